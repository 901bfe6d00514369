import ArgumentParser
import Foundation
import Logging

/// `pumpctl`: the command-line programmer and diagnostics tool.
@main
struct PumpCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pumpctl",
        abstract: "Programs and inspects PumpLink pumps.",
        discussion: """
            Talks to a pump directly over a serial port (--port, with the pump's pairing key in \
            --key-file), or to a pump of a running pumplinkd (--pump, with --daemon and --token or \
            PUMPLINK_DAEMON and PUMPLINK_TOKEN); devices and watch-daemon list and watch its pumps. Exit codes: 0 done, 1 failed or refused, 2 usage, 3 outcome uncertain \
            (a changing command was sent but its result is unknown: check the pump before retrying).
            """,
        subcommands: [
            Ports.self, Devices.self, DaemonWatch.self, StatusCommand.self, Watch.self, Events.self, ProgramCommand.self, Refill.self,
            Bolus.self, Suspend.self, Resume.self, Alarms.self, Clock.self, CaptureCommand.self, Tap.self, AuditCommand.self,
        ]
    )

    static func main() async {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            // Usage errors exit with 2, like the other refusals before anything is sent.
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

