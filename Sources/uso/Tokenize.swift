import ArgumentParser
import Foundation
import Pipeline
import Tokenizers

/// `uso tokenize`: what each text encoder sees of a prompt, and whether it was cut.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the T5 and CLIP tokens of a prompt and whether it is truncated (CLIP keeps 77 tokens, T5 512).")

    @Argument(help: "The prompt.") var prompt: String

    @Option(name: .customLong("model-dir"), help: "Model folder (reference layout). Default: the bundled model.")
    var modelDirectory: String?

    @Flag(name: .customLong("json"), help: "Print {\"t5\": [ids], \"clip\": [ids]}: the padded sequences the encoders receive.")
    var json = false

    func run() throws {
        let t5: TokenizedText, clip: TokenizedText
        do {
            let directory = try modelDirectory.map { URL(fileURLWithPath: $0) } ?? ModelLocation.bundledDefault()
            let location = ModelLocation(directory: directory, modelType: .fluxDev)
            t5 = try T5Tokenizer(directory: location.t5).encode(prompt)
            clip = try CLIPTokenizer(directory: location.clip).encode(prompt)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        if json {
            print("{\"t5\": \(t5.ids), \"clip\": \(clip.ids)}")
            return
        }
        show("T5", t5) { $0 }
        show("CLIP", clip) { CLIPTokenizer.readable(piece: $0) }
    }

    private func show(_ name: String, _ tokens: TokenizedText, readable: (String) -> String) {
        let status = tokens.truncated
            ? "TRUNCATED: the prompt is longer than \(tokens.ids.count) tokens; the rest is ignored"
            : "\(tokens.length) of \(tokens.ids.count) tokens used"
        print("\(name): \(status)")
        for (piece, id) in zip(tokens.pieces, tokens.ids) {
            print("  \(String(id).padding(toLength: 7, withPad: " ", startingAt: 0)) \(readable(piece))")
        }
    }
}
