import ArgumentParser
import Foundation

@main
struct USO: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uso",
        abstract: "Unified style- and subject-driven image generation (USO on FLUX.1), natively in Swift.",
        subcommands: [Generate.self, Serve.self, Inspect.self, Tokenize.self, Download.self, Models.self, Convert.self])

    /// The reference's boolean forms (`--offload false`) become the parser's before parsing.
    static func main() async {
        await main(ReferenceBooleans.normalized(Array(CommandLine.arguments.dropFirst())))
    }
}
