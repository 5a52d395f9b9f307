import Foundation
import Testing

/// The README shows what runs: its shell session is run here command by command and its output
/// compared, its Swift program is the `FourExecutors` example, and its install commands are the
/// packages CI installs. (The two commands at its top are what CI itself runs.)
@Suite("README")
struct ReadmeTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func text(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The fenced blocks of `markdown` in `language`, each as its lines.
    static func blocks(_ markdown: String, language: String) -> [[String]] {
        var blocks: [[String]] = []
        var current: [String]?
        for line in markdown.components(separatedBy: "\n") {
            if current == nil, line == "```" + language {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!)
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    /// Every command of the README's shell session runs, in order, and prints what it shows.
    @Test(.enabled(if: wasiToolchainAvailable))
    func theShellSessionRunsAsShown() async throws {
        let readme = try Self.text("README.md")
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = try #require(Self.blocks(readme, language: "c").first)
        try source.joined(separator: "\n").write(toFile: directory + "/shout.c", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory + "/texts", withIntermediateDirectories: true)
        try "x y x 4 5\n".write(toFile: directory + "/texts/a.txt", atomically: true, encoding: .utf8)
        let session = try #require(Self.blocks(readme, language: "sh").first { $0.first?.hasPrefix("$ ") == true })
        var commands: [(command: String, output: [String])] = []
        for line in session {
            if line.hasPrefix("$ ") {
                commands.append((String(line.dropFirst(2)), []))
            } else {
                commands[commands.count - 1].output.append(line)
            }
        }
        #expect(commands.count == 3)
        let tools = URL(fileURLWithPath: futuresPath).deletingLastPathComponent().path
        for (command, expected) in commands {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", command]
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            var environment = ProcessInfo.processInfo.environment
            environment["PATH"] = tools + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let bytes = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(command)")
            let printed = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\n").dropLast()
            #expect(Array(printed) == expected, "\(command)")
        }
    }

    /// The README's Swift program is the `FourExecutors` example, line for line.
    @Test func theProgramIsTheExample() throws {
        let program = try #require(Self.blocks(try Self.text("README.md"), language: "swift").first)
        let example = try Self.text("Examples/FourExecutors/main.swift")
        for line in program where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            #expect(example.contains(line), "Examples/FourExecutors/main.swift lacks: \(line)")
        }
    }

    /// The README's plugin code is the `Plugins` example's (which PluginExampleTests runs).
    @Test func thePluginCodeIsTheExample() throws {
        let blocks = Self.blocks(try Self.text("README.md"), language: "swift")
        try #require(blocks.count == 2)
        let example = try Self.text("Examples/Plugins/main.swift")
        for line in blocks[1] where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            #expect(example.contains(line.trimmingCharacters(in: .whitespaces)), "Examples/Plugins/main.swift lacks: \(line)")
        }
    }

    /// The packages the README tells users to install are the ones CI installs and tests with.
    @Test func theInstallCommandsAreWhatCIInstalls() throws {
        let readme = try Self.text("README.md")
        let ci = try Self.text(".ci/run")
        let installs = readme.components(separatedBy: "`apt-get install ").dropFirst().map { $0.prefix { $0 != "`" } }
        #expect(installs.count >= 3)
        for packages in installs {
            for package in packages.split(separator: " ") {
                #expect(ci.contains("packages+=(\(package))"), ".ci/run does not install \(package)")
            }
        }
    }
}
