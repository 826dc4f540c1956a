/// The central directory of a zip archive in a mapped file, read just far enough to find stored
/// (uncompressed) entries, whose bytes can then be used in place. torch.save writes such archives,
/// always with zip64 records; a checkpoint can be tens of GB.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let flags: UInt16
        let compressedSize: Int
        let size: Int
        let localHeaderOffset: Int
    }

    let file: MappedFile
    /// Entries in central-directory order.
    let entries: [Entry]

    private static let endOfCentralDirectorySignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EndSignature: UInt32 = 0x0606_4b50
    private static let centralEntrySignature: UInt32 = 0x0201_4b50
    static let localHeaderSignature: UInt32 = 0x0403_4b50
    private static let zip64ExtraFieldID: UInt16 = 0x0001

    init(file: MappedFile) throws {
        self.file = file
        let reader = BoundedReader(file: file)
        let (count, directoryOffset, directorySize) = try Self.locateCentralDirectory(reader)
        guard file.contains(offset: directoryOffset, count: directorySize) else {
            throw reader.malformed("the central directory lies outside the file (truncated?)")
        }
        var entries: [Entry] = []
        var offset = directoryOffset
        // Each entry takes at least 46 bytes, which bounds `count` for a hostile archive.
        guard count <= directorySize / 46 else { throw reader.malformed("the central directory claims \(count) entries in \(directorySize) bytes") }
        for _ in 0..<count {
            guard try reader.read(UInt32.self, at: offset) == Self.centralEntrySignature else {
                throw reader.malformed("bad central directory entry at byte \(offset)")
            }
            let flags = try reader.read(UInt16.self, at: offset + 8)
            let method = try reader.read(UInt16.self, at: offset + 10)
            var compressedSize = Int(try reader.read(UInt32.self, at: offset + 20))
            var size = Int(try reader.read(UInt32.self, at: offset + 24))
            let nameLength = Int(try reader.read(UInt16.self, at: offset + 28))
            let extraLength = Int(try reader.read(UInt16.self, at: offset + 30))
            let commentLength = Int(try reader.read(UInt16.self, at: offset + 32))
            var localHeaderOffset = Int(try reader.read(UInt32.self, at: offset + 42))
            let nameStart = offset + 46
            guard file.contains(offset: nameStart, count: nameLength + extraLength) else {
                throw reader.malformed("a central directory entry runs past the end of the file")
            }
            guard let name = String(validating: file.bytes(nameStart..<nameStart + nameLength), as: UTF8.self) else {
                throw reader.malformed("an entry name at byte \(nameStart) is not UTF-8")
            }
            // A zip64 extra field holds, in this order, those of the three values whose 32-bit field is 0xFFFFFFFF.
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let id = try reader.read(UInt16.self, at: extra)
                let length = Int(try reader.read(UInt16.self, at: extra + 2))
                if id == Self.zip64ExtraFieldID {
                    var field = extra + 4
                    func next() throws -> Int {
                        guard field + 8 <= extra + 4 + length else { throw reader.malformed("the zip64 field of '\(name)' is too short") }
                        let value = try reader.read(UInt64.self, at: field)
                        field += 8
                        guard let exact = Int(exactly: value) else { throw reader.malformed("a zip64 size of '\(name)' is out of range") }
                        return exact
                    }
                    if size == 0xFFFF_FFFF { size = try next() }
                    if compressedSize == 0xFFFF_FFFF { compressedSize = try next() }
                    if localHeaderOffset == 0xFFFF_FFFF { localHeaderOffset = try next() }
                }
                extra += 4 + length
            }
            entries.append(Entry(name: name, method: method, flags: flags, compressedSize: compressedSize,
                                 size: size, localHeaderOffset: localHeaderOffset))
            offset = extraEnd + commentLength
        }
        self.entries = entries
    }

    /// Entry count, offset and size of the central directory, from the end record (or its zip64 form).
    private static func locateCentralDirectory(_ reader: BoundedReader) throws -> (count: Int, offset: Int, size: Int) {
        let file = reader.file
        // The end record is 22 bytes plus a comment of at most 65535 bytes.
        let lastCandidate = file.byteCount - 22
        guard lastCandidate >= 0 else { throw reader.malformed("too short to be a zip archive") }
        guard let end = stride(from: lastCandidate, through: max(0, lastCandidate - 65535), by: -1)
            .first(where: { file.littleEndian(UInt32.self, at: $0) == endOfCentralDirectorySignature })
        else { throw reader.malformed("no zip end-of-central-directory record (truncated?)") }

        if end >= 20, try reader.read(UInt32.self, at: end - 20) == zip64LocatorSignature {
            // The record's 56 bytes must lie in the file before fields are read at offsets from it.
            let recordOffset = try reader.read(UInt64.self, at: end - 12)
            guard let record = Int(exactly: recordOffset), file.contains(offset: record, count: 56),
                  try reader.read(UInt32.self, at: record) == zip64EndSignature else {
                throw reader.malformed("the zip64 end record is missing or out of place")
            }
            guard try reader.read(UInt32.self, at: record + 16) == 0, try reader.read(UInt32.self, at: record + 20) == 0 else {
                throw WeightError.unsupportedFormat(path: file.path, reason: "multi-part zip archives are not supported")
            }
            guard let count = Int(exactly: try reader.read(UInt64.self, at: record + 32)),
                  let size = Int(exactly: try reader.read(UInt64.self, at: record + 40)),
                  let offset = Int(exactly: try reader.read(UInt64.self, at: record + 48))
            else { throw reader.malformed("the zip64 end record holds out-of-range values") }
            return (count, offset, size)
        }
        guard try reader.read(UInt16.self, at: end + 4) == 0, try reader.read(UInt16.self, at: end + 6) == 0 else {
            throw WeightError.unsupportedFormat(path: file.path, reason: "multi-part zip archives are not supported")
        }
        return (Int(try reader.read(UInt16.self, at: end + 10)),
                Int(try reader.read(UInt32.self, at: end + 16)),
                Int(try reader.read(UInt32.self, at: end + 12)))
    }

    /// The absolute byte range of a stored entry's data in the file. Compressed or encrypted
    /// entries are refused: their bytes cannot be mapped.
    func dataRange(of entry: Entry) throws -> Range<Int> {
        let reader = BoundedReader(file: file)
        guard entry.method == 0, entry.compressedSize == entry.size else {
            throw WeightError.unsupportedFormat(path: file.path, reason: "zip entry '\(entry.name)' is compressed (method \(entry.method)); checkpoints written by torch.save store tensors uncompressed, so re-save it with torch.save or convert it to safetensors")
        }
        guard entry.flags & 1 == 0 else {
            throw WeightError.unsupportedFormat(path: file.path, reason: "zip entry '\(entry.name)' is encrypted")
        }
        // The header's 30 bytes must lie in the file before fields are read at offsets from it.
        let header = entry.localHeaderOffset
        guard file.contains(offset: header, count: 30), try reader.read(UInt32.self, at: header) == Self.localHeaderSignature else {
            throw reader.malformed("zip entry '\(entry.name)' has no local header at byte \(header)")
        }
        // The local header's own name and extra lengths decide where the data starts (torch pads the
        // extra field so that tensor data is 64-byte aligned).
        let nameLength = Int(try reader.read(UInt16.self, at: header + 26))
        let extraLength = Int(try reader.read(UInt16.self, at: header + 28))
        let start = header + 30 + nameLength + extraLength
        guard file.contains(offset: start, count: entry.size) else {
            throw reader.malformed("the data of zip entry '\(entry.name)' runs past the end of the file (truncated?)")
        }
        return start..<start + entry.size
    }
}

/// Reads little-endian integers from a mapped file, throwing a `WeightError` past its end.
struct BoundedReader {
    let file: MappedFile

    func read<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws -> T {
        guard let value = file.littleEndian(type, at: offset) else {
            throw malformed("a zip structure at byte \(offset) runs past the end of the file (truncated?)")
        }
        return value
    }

    func malformed(_ reason: String) -> WeightError { .malformedHeader(path: file.path, reason: reason) }
}
