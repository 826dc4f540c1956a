import Foundation

/// A JSON value written the way Python's `json.dump(obj, indent=4)` writes it (keys in insertion
/// order, non-ASCII escaped, `4` for an int and `4.0` for a float), so our config files read
/// exactly like the reference's.
public indirect enum PythonJSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case array([PythonJSON])
    case object([(String, PythonJSON)])

    public static func == (a: PythonJSON, b: PythonJSON) -> Bool { a.serialized() == b.serialized() }

    public func serialized(indent: Int = 4) -> String {
        var out = ""
        write(into: &out, level: 0, indent: indent)
        return out
    }

    private func write(into out: inout String, level: Int, indent: Int) {
        let pad = String(repeating: " ", count: (level + 1) * indent), close = String(repeating: " ", count: level * indent)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .float(let d): out += Self.pythonRepr(d)
        case .string(let s): out += Self.quoted(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.write(into: &out, level: level + 1, indent: indent)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += close + "]"
        case .object(let fields):
            if fields.isEmpty { out += "{}"; return }
            out += "{\n"
            for (i, (key, value)) in fields.enumerated() {
                out += pad + Self.quoted(key) + ": "
                value.write(into: &out, level: level + 1, indent: indent)
                out += i + 1 < fields.count ? ",\n" : "\n"
            }
            out += close + "}"
        }
    }

    /// Python's float repr: shortest round-trip digits, always with a '.0' or exponent.
    static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        var text = "\(d)"   // Swift also prints the shortest round-trip form
        if let e = text.firstIndex(of: "e") {
            // Swift writes 1e-05 as "1e-05"; Python as "1e-05" too; make sure the mantissa form matches.
            let mantissa = text[..<e], exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(mantissa.hasSuffix(".0") ? mantissa.dropLast(2) : mantissa)
                + "e" + (exponent < 0 ? "-" : "+") + String(format: "%02d", abs(exponent))
        }
        return text
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for unit in s.utf16 {
            switch unit {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x20..<0x7F: out += String(UnicodeScalar(UInt8(unit)))
            default: out += String(format: "\\u%04x", unit)
            }
        }
        return out + "\""
    }
}
