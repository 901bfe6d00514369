import Prometheus

/// The daemon's Prometheus metrics (BRIEF §4): frames, check failures, retransmissions, link
/// state and reservoir per pump. Created once per pump; label values are the configured ids.
struct PumpMetrics: Sendable {
    let framesSent: Counter
    let framesReceived: Counter
    let checkFailures: Counter
    let retransmissions: Counter
    let authenticationFailures: Counter
    let linkUp: Gauge
    let reservoirMicroliters: Gauge
    let unacknowledgedAlarms: Gauge

    init(registry: PrometheusCollectorRegistry, pumpID: String) {
        let labels = [("pump", pumpID)]
        framesSent = registry.makeCounter(name: "pumplink_frames_sent_total", labels: labels, help: "Frames sent to the pump")
        framesReceived = registry.makeCounter(name: "pumplink_frames_received_total", labels: labels, help: "Intact frames received from the pump")
        checkFailures = registry.makeCounter(name: "pumplink_check_failures_total", labels: labels, help: "Frames received with a failed CRC-32C")
        retransmissions = registry.makeCounter(name: "pumplink_retransmissions_total", labels: labels, help: "Requests sent again after a timeout")
        authenticationFailures = registry.makeCounter(name: "pumplink_authentication_failures_total", labels: labels, help: "Answers whose authentication tag failed")
        linkUp = registry.makeGauge(name: "pumplink_link_up", labels: labels, help: "1 while a session with the pump is open")
        reservoirMicroliters = registry.makeGauge(name: "pumplink_reservoir_microliters", labels: labels, help: "Reservoir volume the pump reports")
        unacknowledgedAlarms = registry.makeGauge(name: "pumplink_unacknowledged_alarms", labels: labels, help: "Alarms raised and not acknowledged")
    }
}
