import ArgumentParser
import Foundation
import Logging
import PumpLinkDaemon
import ServiceLifecycle

/// `pumplinkd`: the PumpLink daemon.
@main
struct PumpLinkDaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pumplinkd",
        abstract: "Links implanted drug pumps on serial ports to clinician and patient apps over a local HTTP API.",
        discussion: "Stops gracefully on SIGTERM or SIGINT. See the README for the configuration file."
    )

    @Option(help: "The configuration file (JSON).")
    var config: String

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        // Everything the daemon creates (data folder, database and its WAL and SHM, captures)
        // is its user's alone.
        umask(0o077)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "pumplinkd")
        let configuration: DaemonConfiguration
        let fleet: PumpFleet
        do {
            configuration = try DaemonConfiguration.load(from: config)
            try configuration.api.validate()
            try configuration.checkPrivateFiles()
            fleet = try PumpFleet(configuration: configuration, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let api = buildAPI(service: fleet, configuration: configuration.api, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: FleetService(fleet: fleet)), .init(service: api)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // A client stalled mid-write must not hold shutdown up for long.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// The fleet as a service of the group: runs until graceful shutdown, then lets go of the ports.
struct FleetService: Service {
    let fleet: PumpFleet

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await fleet.run()
        }
        // With no pumps configured the fleet has nothing to run: the API still serves until
        // shutdown (a service that returns early would stop the whole group).
        try? await gracefulShutdown()
    }
}
