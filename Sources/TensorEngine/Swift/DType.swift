import CKernels

/// Storage element types. Names match the safetensors header spellings.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = "F32"
    case bf16 = "BF16"
    case f16 = "F16"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"

    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .bf16, .f16: 2
        case .f8e4m3, .f8e5m2: 1
        }
    }

    public var description: String { rawValue }

    /// Decode `count` elements of this type at `source` into floats.
    func decode(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .f32: destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .bf16: uso_bf16_to_f32(source.assumingMemoryBound(to: UInt16.self), destination, count)
        case .f16: uso_f16_to_f32(source.assumingMemoryBound(to: UInt16.self), destination, count)
        case .f8e4m3: uso_f8e4m3_to_f32(source.assumingMemoryBound(to: UInt8.self), destination, count)
        case .f8e5m2: uso_f8e5m2_to_f32(source.assumingMemoryBound(to: UInt8.self), destination, count)
        }
    }

    /// Encode `count` floats into this type at `destination`, rounding to nearest even.
    func encode(_ source: UnsafePointer<Float>, into destination: UnsafeMutableRawPointer, count: Int) {
        switch self {
        case .f32: destination.assumingMemoryBound(to: Float.self).update(from: source, count: count)
        case .bf16: uso_f32_to_bf16(source, destination.assumingMemoryBound(to: UInt16.self), count)
        case .f16: uso_f32_to_f16(source, destination.assumingMemoryBound(to: UInt16.self), count)
        case .f8e4m3: uso_f32_to_f8e4m3(source, destination.assumingMemoryBound(to: UInt8.self), count)
        case .f8e5m2: uso_f32_to_f8e5m2(source, destination.assumingMemoryBound(to: UInt8.self), count)
        }
    }
}
