import CKernels

/// Storage element types. Names match the safetensors header spellings.
public enum DType: String, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = "F32"
    case bf16 = "BF16"
    case f16 = "F16"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    /// Quantized weights (with a scale per output row beside them); read as values, never written by a cast.
    case i8 = "I8"

    public var byteSize: Int {
        switch self {
        case .f32: 4
        case .bf16, .f16: 2
        case .f8e4m3, .f8e5m2, .i8: 1
        }
    }

    public var description: String { rawValue }

    /// The number the C kernels use for this type (`enum uso_dtype`).
    var code: Int32 {
        switch self {
        case .f32: Int32(USO_F32.rawValue)
        case .bf16: Int32(USO_BF16.rawValue)
        case .f16: Int32(USO_F16.rawValue)
        case .f8e4m3: Int32(USO_F8E4M3.rawValue)
        case .f8e5m2: Int32(USO_F8E5M2.rawValue)
        case .i8: Int32(USO_I8.rawValue)
        }
    }
}
