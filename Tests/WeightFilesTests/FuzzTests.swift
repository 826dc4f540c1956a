import Foundation
import TensorEngine
import XCTest
@testable import WeightFiles

/// Seeded random mutations of the fixture files, fed to each parser: every input must load (every
/// tensor read to its last byte) or throw a WeightError; a trap or a fault ends the run. Inputs are
/// presented as in-memory files followed by an inaccessible page, so a read past the end faults.
///
/// By default each parser gets a few seconds. For a long run:
///     USO_FUZZ_ITERATIONS=1000000 USO_FUZZ_SECONDS=600 swift test --filter FuzzTests
/// (inputs and seconds per parser, whichever ends first; USO_FUZZ_SEED picks another sequence).
final class FuzzTests: XCTestCase {
    /// Safetensors files, through format detection to the header parser; one seed's header length
    /// starts 0x80 0x02, like a pickle.
    func testSafetensorsFilesNeverCrash() throws {
        let header = #"{"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}"#
        let seeds = try fixtureFiles { $0.hasSuffix(".safetensors") } + [safetensorsBytes(header: header, headerLength: 0x280, data: [1, 2, 3, 4])]
        try fuzz("safetensors", seeds: seeds) { bytes in
            try readEveryTensor(openWeightFile(MappedFile(bytes: bytes, path: "fuzz.safetensors")))
        }
    }

    /// PyTorch zip checkpoints, through format detection, the zip reader and the unpickler.
    func testTorchCheckpointsNeverCrash() throws {
        try fuzz("torch zip", seeds: try fixtureFiles { $0.hasSuffix(".bin") }) { bytes in
            try readEveryTensor(openWeightFile(MappedFile(bytes: bytes, path: "fuzz.bin")))
        }
    }

    /// The restricted unpickler alone, on the state-dict pickles of the checkpoints, so that every
    /// mutation lands in a pickle.
    func testPicklesNeverCrash() throws {
        let pickles = try fixtureFiles { $0.hasSuffix(".bin") }.compactMap { bytes -> [UInt8]? in
            guard let archive = try? ZipArchive(file: MappedFile(bytes: bytes, path: "seed.bin")),
                  let entry = archive.entries.first(where: { $0.name.hasSuffix("data.pkl") }),
                  let range = try? archive.dataRange(of: entry) else { return nil }
            return archive.file.bytes(range)
        }
        XCTAssertGreaterThan(pickles.count, 10)
        try fuzz("pickle", seeds: pickles) { bytes in
            _ = try RestrictedUnpickler.stateDictTensors(pickle: bytes, path: "fuzz.bin")
        }
    }

    /// Runs `parse` on mutated seeds until the input count or the time budget is reached, and
    /// checks that both outcomes occur: a fuzzer that only ever refuses tests nothing past the first check.
    private func fuzz(_ name: String, seeds: [[UInt8]], parse: ([UInt8]) throws -> Void) throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = environment["USO_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20_000
        let seconds = environment["USO_FUZZ_SECONDS"].flatMap(Double.init) ?? 5
        let seed = environment["USO_FUZZ_SEED"].flatMap(UInt64.init) ?? 20_250_823
        let mutator = Mutator(seeds: seeds)
        let start = Date()
        var (loaded, refused, done) = (0, 0, 0)
        while done < iterations, done % 256 != 0 || Date().timeIntervalSince(start) < seconds {  // the clock is read every 256 inputs
            // Each input has its own generator, so a failing one is found again from its number.
            var numbered = SplitMix64(seed: seed ^ UInt64(done))
            var generator = SplitMix64(seed: numbered.next())
            let input = mutator.mutated(using: &generator)
            do {
                try parse(input)
                loaded += 1
            } catch is WeightError {
                refused += 1
            } catch {
                XCTFail("\(name) input \(done) (seed \(seed)) threw \(error), not a WeightError")
            }
            done += 1
        }
        print("fuzz \(name): \(done) inputs in \(String(format: "%.1f", Date().timeIntervalSince(start))) s, \(loaded) loaded, \(refused) refused")
        XCTAssertGreaterThan(loaded, done / 1000, "\(name): mutated inputs that still load")
        XCTAssertGreaterThan(refused, done / 10, "\(name): mutated inputs that are refused")
    }

    /// Every non-empty file under Tests/Fixtures/weights whose name passes `include`.
    private func fixtureFiles(_ include: (String) -> Bool) throws -> [[UInt8]] {
        let files = FileManager.default.enumerator(atPath: Fixtures.root.path)?.compactMap { $0 as? String }.filter(include).sorted() ?? []
        let contents = try files.map { try [UInt8](Data(contentsOf: Fixtures.root.appendingPathComponent($0))) }.filter { !$0.isEmpty }
        XCTAssertGreaterThan(contents.count, 5)
        return contents
    }
}

/// Reads every loadable tensor to its last byte (decoding them all), and checks it is what `info`
/// announced.
private func readEveryTensor(_ source: WeightSource) throws {
    for key in source.keys {
        let tensor = try source.tensor(key)
        guard let info = source.info(key), info.shape == tensor.shape, info.dtype == tensor.dtype,
              tensor.toFloats().count == tensor.count else {
            throw FuzzFailure(description: "'\(key)' loads as \(tensor), not as announced")
        }
    }
}

private struct FuzzFailure: Error, CustomStringConvertible { let description: String }

/// Mutations that reach parser bugs: bit flips, interesting bytes, extreme integers over length
/// fields (binary ones, decimal ones in JSON, pickle integers), truncation, and chunks deleted,
/// repeated or spliced in from another seed.
struct Mutator {
    let seeds: [[UInt8]]
    /// Per seed, where its zip signatures ("PK") are: fields near them are lengths and offsets. Once
    /// chunks move, these are only roughly where the fields are, which is fine for fuzzing.
    private let signatures: [[Int]]

    init(seeds: [[UInt8]]) {
        self.seeds = seeds
        signatures = seeds.map { seed in (0..<max(0, seed.count - 1)).filter { seed[$0] == UInt8(ascii: "P") && seed[$0 + 1] == UInt8(ascii: "K") } }
    }

    private static let interestingBytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xff] + Array(#"0123456789-.e,:[]{}" "#.utf8)
    private static let interestingIntegers: [UInt64] = [
        0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 1 << 32, 1 << 40,
        1 << 62, UInt64(Int64.max), UInt64(Int64.max) - 29, 1 << 63, UInt64.max,
    ]
    private static let interestingNumbers = [
        "0", "1", "-1", "2.5", "1e30", "4294967296", "1099511627776", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "18446744073709551615",
    ]

    func mutated(using generator: inout SplitMix64) -> [UInt8] {
        let seed = Int(generator.next() % UInt64(seeds.count))
        var input = seeds[seed]
        for _ in 0...generator.next() % 4 { mutate(&input, fieldsNear: signatures[seed], using: &generator) }
        return input
    }

    private func mutate(_ input: inout [UInt8], fieldsNear signatures: [Int], using generator: inout SplitMix64) {
        func random(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(generator.next() % UInt64(bound)) }
        guard !input.isEmpty else { input = [UInt8(random(256))]; return }
        let position = random(input.count)
        switch random(9) {
        case 0:  // flip a bit
            input[position] ^= 1 << random(8)
        case 1:  // an interesting byte
            input[position] = Self.interestingBytes[random(Self.interestingBytes.count)]
        case 2:  // an extreme little-endian integer, over a field near a zip signature (or the start) or anywhere
            let field = random(2) == 0 ? position : (signatures.isEmpty ? 0 : signatures[random(signatures.count)] + random(64))
            var value = Self.interestingIntegers[random(Self.interestingIntegers.count)]
            if random(4) == 0 { value = UInt64(input.count + random(17)) &- 8 }  // about the file's size
            let bytes = withUnsafeBytes(of: value.littleEndian, Array.init).prefix(min([1, 2, 4, 8][random(4)], input.count))
            let start = min(field, input.count - bytes.count)
            input.replaceSubrange(start..<start + bytes.count, with: bytes)
        case 3:  // an extreme decimal number in place of one in a JSON header
            guard let digit = (position..<input.count).first(where: { (0x30...0x39).contains(input[$0]) }) else { return }
            let end = input[digit...].firstIndex { !(0x30...0x39).contains($0) } ?? input.count
            input.replaceSubrange(digit..<end, with: Array(Self.interestingNumbers[random(Self.interestingNumbers.count)].utf8))
        case 4:  // an extreme pickle integer (LONG1) in place of a small one (BININT1, BININT2, BININT)
            let payload: [UInt8: Int] = [UInt8(ascii: "K"): 1, UInt8(ascii: "M"): 2, UInt8(ascii: "J"): 4]
            guard let opcode = (position..<input.count).first(where: { payload[input[$0]] != nil }) else { return }
            let end = min(input.count, opcode + 1 + payload[input[opcode]]!)
            let value = Self.interestingIntegers[random(Self.interestingIntegers.count)]
            input.replaceSubrange(opcode..<end, with: [0x8a, 8] + withUnsafeBytes(of: value.littleEndian, Array.init))
        case 5:  // truncate
            input.removeLast(1 + random(input.count - 1))
        case 6:  // delete a chunk
            input.removeSubrange(position..<min(input.count, position + 1 + random(64)))
        case 7:  // repeat a chunk of the input elsewhere
            let start = random(input.count)
            input.insert(contentsOf: input[start..<min(input.count, start + 1 + random(64))], at: position)
        default:  // splice in a chunk of another seed, inserted or overwriting
            let donor = seeds[random(seeds.count)]
            let start = random(donor.count)
            let chunk = donor[start..<min(donor.count, start + 1 + random(256))]
            if random(2) == 0 {
                input.insert(contentsOf: chunk, at: position)
            } else {
                input.replaceSubrange(position..<min(input.count, position + chunk.count), with: chunk)
            }
        }
        if input.count > 1 << 16 { input.removeLast(input.count - (1 << 16)) }
    }
}
