import Foundation

/// A JSON reader (RFC 8259) for request bodies, which come from anyone: one pass over the bytes,
/// nesting deeper than `maxDepth` refused as soon as it is seen, a key given twice refused rather
/// than one of them silently chosen, and every refusal saying what is wrong and at which byte.
enum StrictJSON {
    indirect enum Value: Equatable {
        case string(String), number(Double), bool(Bool), null, array([Value]), object([String: Value])
    }

    struct SyntaxError: Error, Equatable, CustomStringConvertible {
        let description: String
    }

    /// Job fields are flat; a few levels leave room for lists without letting a body cost much.
    static let maxDepth = 32

    static func parse(_ data: Data) throws -> Value {
        var reader = Reader(bytes: [UInt8](data))
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.position == reader.bytes.count else { throw reader.error("unexpected \(reader.shownByte) after the JSON value") }
        return value
    }

    /// Whether `text` is a number as JSON writes one: `-12.5e3` is, `0x4`, `+1`, `.5`, `nan` are not.
    static func isNumber(_ text: some StringProtocol) -> Bool {
        var reader = Reader(bytes: Array(text.utf8))
        return (try? reader.numberText()) != nil && reader.position == reader.bytes.count
    }

    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        var shownByte: String {
            guard position < bytes.count else { return "end of the body" }
            let byte = bytes[position]
            return (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : String(format: "byte 0x%02X", byte)
        }

        func error(_ message: String, at offset: Int? = nil) -> SyntaxError {
            SyntaxError(description: "\(message) at byte \(offset ?? position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func value(depth: Int) throws -> Value {
            skipWhitespace()
            guard position < bytes.count else { throw error("the body ends where a value should be") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth + 1)
            case UInt8(ascii: "["): return try array(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw error("unexpected \(shownByte)")
            }
        }

        private mutating func enter(_ depth: Int) throws {
            guard depth <= StrictJSON.maxDepth else {
                throw error("the JSON is nested deeper than \(StrictJSON.maxDepth) levels")
            }
            position += 1
        }

        private mutating func object(depth: Int) throws -> Value {
            try enter(depth)
            var members: [String: Value] = [:]
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                let keyOffset = position
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw error("expected a key in quotes, found \(shownByte)")
                }
                let key = try string()
                guard members[key] == nil else { throw error("the key \"\(key.prefix(40))\" is given more than once", at: keyOffset) }
                skipWhitespace()
                try expect(":")
                members[key] = try value(depth: depth)
                skipWhitespace()
                if try endOfList("}") { return .object(members) }
            }
        }

        private mutating func array(depth: Int) throws -> Value {
            try enter(depth)
            var items: [Value] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth))
                skipWhitespace()
                if try endOfList("]") { return .array(items) }
            }
        }

        /// After a list item: true at `close`, false after a comma.
        private mutating func endOfList(_ close: Unicode.Scalar) throws -> Bool {
            guard position < bytes.count else { throw error("the body ends inside a list or object") }
            switch bytes[position] {
            case UInt8(ascii: ","): position += 1; return false
            case UInt8(ascii: close): position += 1; return true
            default: throw error("expected ',' or '\(close)', found \(shownByte)")
            }
        }

        private mutating func expect(_ scalar: Unicode.Scalar) throws {
            guard position < bytes.count, bytes[position] == UInt8(ascii: scalar) else {
                throw error("expected '\(scalar)', found \(shownByte)")
            }
            position += 1
        }

        private mutating func literal(_ word: String) throws {
            guard bytes[position...].starts(with: word.utf8) else { throw error("unexpected \(shownByte)") }
            position += word.utf8.count
        }

        private mutating func number() throws -> Double {
            let start = position
            let text = try numberText()
            guard let value = Double(text), value.isFinite else {
                throw error("the number \(text.prefix(40)) is out of range", at: start)
            }
            return value
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func numberText() throws -> String {
            let start = position
            func digits() throws {
                let first = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                guard position > first else { throw error("a number needs a digit here, found \(shownByte)") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") { position += 1 }
            if position < bytes.count, bytes[position] == UInt8(ascii: "0") { position += 1 } else { try digits() }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") { position += 1; try digits() }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                try digits()
            }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        /// A quoted string: escapes decoded, UTF-8 checked, surrogates paired.
        private mutating func string() throws -> String {
            let start = position
            position += 1
            var utf8: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("the body ends inside a string that starts", at: start) }
                let byte = bytes[position]
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    guard let text = String(validating: utf8, as: UTF8.self) else {
                        throw error("the string is not valid UTF-8", at: start)
                    }
                    return text
                case UInt8(ascii: "\\"):
                    utf8.append(contentsOf: try escape())
                case ..<0x20:
                    throw error("a control character (byte 0x\(String(format: "%02X", byte))) must be escaped in a string")
                default:
                    utf8.append(byte)
                    position += 1
                }
            }
        }

        /// One escape after the backslash, as UTF-8; `\uD83D\uDE00` pairs are joined.
        private mutating func escape() throws -> [UInt8] {
            let start = position
            position += 1
            guard position < bytes.count else { throw error("the body ends inside an escape") }
            let simple: [UInt8: UInt8] = [
                UInt8(ascii: "\""): 0x22, UInt8(ascii: "\\"): 0x5C, UInt8(ascii: "/"): 0x2F, UInt8(ascii: "b"): 0x08,
                UInt8(ascii: "f"): 0x0C, UInt8(ascii: "n"): 0x0A, UInt8(ascii: "r"): 0x0D, UInt8(ascii: "t"): 0x09,
            ]
            if let byte = simple[bytes[position]] {
                position += 1
                return [byte]
            }
            guard bytes[position] == UInt8(ascii: "u") else { throw error("unknown escape \\\(shownByte)", at: start) }
            position += 1
            var code = try hex4()
            if (0xD800...0xDBFF).contains(code), bytes[position...].starts(with: "\\u".utf8) {
                let resume = position
                position += 2
                let low = try hex4()
                if (0xDC00...0xDFFF).contains(low) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    position = resume
                }
            }
            guard let scalar = Unicode.Scalar(code) else {
                throw error("the escape \\u\(String(format: "%04X", code)) is a lone UTF-16 surrogate, not a character", at: start)
            }
            return Array(String(scalar).utf8)
        }

        private mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("\\u needs four hex digits") }
            var code: UInt32 = 0
            for byte in bytes[position..<position + 4] {
                guard let digit = Character(Unicode.Scalar(byte)).hexDigitValue else { throw error("\\u needs four hex digits") }
                code = code << 4 | UInt32(digit)
            }
            position += 4
            return code
        }
    }
}
