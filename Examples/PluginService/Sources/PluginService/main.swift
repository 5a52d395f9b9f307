import Foundation
import Logging
import PluginServiceCore

// The plugin service: `PluginService [--port N] [--host H] [--workers N]`. Prints
// "listening on H:PORT" once it accepts connections; SIGTERM or Ctrl-C drains it and exits 0.
var host = "127.0.0.1"
var port = 8080
var workers = 2
var arguments = CommandLine.arguments.dropFirst()
while let option = arguments.popFirst() {
    switch (option, arguments.popFirst()) {
    case ("--host", let value?): host = value
    case ("--port", let value?) where Int(value) != nil: port = Int(value)!
    case ("--workers", let value?) where Int(value).map({ $0 > 0 }) == true: workers = Int(value)!
    default:
        FileHandle.standardError.write(Data("usage: PluginService [--host H] [--port N] [--workers N]\n".utf8))
        exit(2)
    }
}

PluginService.bootstrap()
var logger = Logger(label: "PluginService")
logger.logLevel = .notice
let listeningHost = host
let app = try PluginService.application(host: host, port: port, workers: workers, logger: logger) { port in
    // One write, unbuffered: the test that starts the service reads this line from a pipe.
    FileHandle.standardOutput.write(Data("listening on \(listeningHost):\(port)\n".utf8))
}
try await app.runService()
