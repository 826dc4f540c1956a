import ArgumentParser
import Foundation
import WeightFiles

/// `uso inspect FILE...`: what a weight file holds, without loading it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of weight files: name, dtype, shape and size, with totals.",
        discussion: """
            FILE may be a .safetensors file, a PyTorch checkpoint (pytorch_model.bin), a sharded set's \
            *.index.json, or a model folder (model.safetensors, model.safetensors.index.json, \
            pytorch_model.bin or pytorch_model.bin.index.json, in that order). Files are mapped and \
            validated; tensor data is not read. Tensors of types uso does not compute with (int64 \
            position ids, for example) are listed as "skipped".
            """)

    @Argument(help: ArgumentHelp("Weight files or model folders.", valueName: "file"), completion: .file())
    var files: [String]

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        var inventories: [(path: String, inventory: WeightInventory)] = []
        var failures: [(path: String, message: String)] = []
        for path in files {
            do {
                let inventory = WeightInventory(try openWeights(path: path))
                inventories.append((path, inventory))
                if !json { printTable(of: inventory, path: path) }
            } catch {
                failures.append((path, String(describing: error)))
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            }
        }
        if json {
            printJSON(inventories, failures: failures)
        } else if inventories.count > 1 {
            let tensors = inventories.reduce(0) { $0 + $1.inventory.tensors.count }
            let parameters = inventories.reduce(0) { $0 + $1.inventory.parameterCount }
            let bytes = inventories.reduce(0) { $0 + $1.inventory.byteCount }
            print("all \(inventories.count) files: \(tensors) tensors, \(parameters.grouped) parameters, \(bytes.byteSize)")
        }
        if !failures.isEmpty { throw ExitCode.failure }
    }

    private func printTable(of inventory: WeightInventory, path: String) {
        print("\(path)  (\(inventory.format))")
        let rows = inventory.tensors.map { entry in
            [entry.name, entry.dtype, "[" + entry.shape.map(String.init).joined(separator: ", ") + "]",
             entry.parameters.grouped, entry.bytes.byteSize, entry.loadable ? "" : "skipped: not a float type"]
        }
        let header = ["name", "dtype", "shape", "parameters", "size", ""]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let rightAligned: Set<Int> = [3, 4]
        for row in [header] + rows {
            let cells = row.indices.map { column in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return rightAligned.contains(column) ? padding + row[column] : row[column] + padding
            }
            print("  " + cells.joined(separator: "  ").trimmingTrailingSpaces)
        }
        let skipped = inventory.tensors.filter { !$0.loadable }.count
        let tensors = "\(inventory.tensors.count) tensors" + (skipped > 0 ? " (\(skipped) skipped)" : "")
        print("  \(tensors), \(inventory.parameterCount.grouped) parameters, \(inventory.byteCount.byteSize)\n")
    }

    private func printJSON(_ inventories: [(path: String, inventory: WeightInventory)], failures: [(path: String, message: String)]) {
        struct File: Encodable { let path: String; let inventory: WeightInventory }
        struct Failure: Encodable { let path: String; let error: String }
        struct Output: Encodable { let files: [File]; let errors: [Failure] }
        let output = Output(files: inventories.map { File(path: $0.path, inventory: $0.inventory) },
                            errors: failures.map { Failure(path: $0.path, error: $0.message) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        if let data = try? encoder.encode(output) { print(String(decoding: data, as: UTF8.self)) }
    }
}

private extension Int {
    /// 1234567 -> "1,234,567".
    var grouped: String {
        let digits = String(magnitude)
        let groups = stride(from: digits.count, to: 0, by: -3).reversed().map { end in
            digits[digits.index(digits.startIndex, offsetBy: Swift.max(0, end - 3))..<digits.index(digits.startIndex, offsetBy: end)]
        }
        return (self < 0 ? "-" : "") + groups.joined(separator: ",")
    }

    /// 1536 -> "1.5 KiB".
    var byteSize: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(self), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(self) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

private extension String {
    var trimmingTrailingSpaces: String {
        String(reversed().drop(while: { $0 == " " }).reversed())
    }
}
