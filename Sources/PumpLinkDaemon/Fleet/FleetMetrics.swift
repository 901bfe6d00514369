import Prometheus

/// The daemon's Prometheus metrics (README, `/metrics`): frames, check failures, retransmissions, link
/// state and reservoir per pump. Created once per pump; label values are the configured ids.
struct PumpMetrics: Sendable {
    let framesSent: Counter
    let framesReceived: Counter
    let checkFailures: Counter
    let retransmissions: Counter
    let authenticationFailures: Counter
    let linkUp: Gauge
    let linkDegraded: Gauge
    let reservoirMicroliters: Gauge
    let unacknowledgedAlarms: Gauge

    init(registry: PrometheusCollectorRegistry, pumpID: String) {
        let labels = [("pump", pumpID)]
        func counter(_ metric: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: Self.name(metric, "total", help), labels: labels)
        }
        func gauge(_ metric: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(descriptor: Self.name(metric, unit, help), labels: labels)
        }
        framesSent = counter("frames_sent", "Frames sent to the pump")
        framesReceived = counter("frames_received", "Intact frames received from the pump")
        checkFailures = counter("check_failures", "Frames received with a failed CRC-32C")
        retransmissions = counter("retransmissions", "Requests sent again after a timeout")
        authenticationFailures = counter(
            "authentication_failures", "Frames from the pump that did not authenticate or open: forged, replayed, altered")
        linkUp = gauge("link", "up", "1 while a session with the pump is open")
        linkDegraded = gauge("link", "degraded", "1 while the session is open but no proven status has come for a few telemetry intervals")
        reservoirMicroliters = gauge("reservoir", "microliters", "Reservoir volume the pump reports")
        unacknowledgedAlarms = gauge("unacknowledged", "alarms", "Alarms raised and not acknowledged")
    }

    /// pumplink_METRIC_UNIT, the names the metrics have always had.
    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "pumplink", metricName: metric, unitName: unit, helpText: help)
    }
}
