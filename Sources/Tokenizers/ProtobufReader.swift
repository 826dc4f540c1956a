// The few protobuf wire-format reads that SentencePiece's ModelProto needs (no code generation).

/// A tokenizer model file (protobuf or charsmap) that cannot be decoded; reported as TokenizerError.malformed.
struct ModelFileError: Error {
    let reason: String
}

/// Reads fields in order from one encoded message; every read is bounds-checked.
struct ProtobufReader {
    enum WireType: UInt64 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, startGroup = 3, endGroup = 4, fixed32 = 5
    }

    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    /// The next field's number and wire type, or nil at the end of the message.
    mutating func nextField() throws -> (number: Int, wireType: WireType)? {
        guard position < bytes.endIndex else { return nil }
        let key = try varint()
        guard let wireType = WireType(rawValue: key & 7), key >> 3 > 0 else {
            throw ModelFileError(reason: "invalid field key \(key) at byte \(position - bytes.startIndex)")
        }
        return (Int(key >> 3), wireType)
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard position < bytes.endIndex else { throw ModelFileError(reason: "truncated varint") }
            let byte = bytes[position]
            position += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        throw ModelFileError(reason: "varint longer than 10 bytes")
    }

    mutating func float() throws -> Float {
        let raw = try take(4)
        let bits = raw.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }  // little-endian
        return Float(bitPattern: bits)
    }

    mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
        let length = try varint()
        guard length <= UInt64(bytes.endIndex - position) else {
            throw ModelFileError(reason: "a field of \(length) bytes runs past the end of its message")
        }
        return try take(Int(length))
    }

    mutating func skip(_ wireType: WireType) throws {
        switch wireType {
        case .varint: _ = try varint()
        case .fixed64: _ = try take(8)
        case .lengthDelimited: _ = try lengthDelimited()
        case .fixed32: _ = try take(4)
        case .startGroup, .endGroup: throw ModelFileError(reason: "groups are not used by this format")
        }
    }

    /// Fails unless a field arrived with the wire type its schema gives it.
    static func require(_ expected: WireType, for field: (number: Int, wireType: WireType)) throws {
        guard field.wireType == expected else {
            throw ModelFileError(reason: "field \(field.number) has wire type \(field.wireType), expected \(expected)")
        }
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count <= bytes.endIndex - position else { throw ModelFileError(reason: "truncated message") }
        defer { position += count }
        return bytes[position..<position + count]
    }
}
