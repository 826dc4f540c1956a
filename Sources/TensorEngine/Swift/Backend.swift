import CKernels

/// Where tensor work runs. Only the CPU exists today; a GPU backend becomes another case, chosen
/// once per pipeline, with the same op signatures.
public enum Backend: Sendable, Equatable {
    case cpu
}

/// The library behind F32 matrix products on the CPU. By default the faster of the two on this
/// processor, timed once per process; `select()` fixes one (tests and benchmarks).
public enum F32MatrixLibrary: Int32, Sendable, CaseIterable {
    /// OpenBLAS sgemm.
    case openBLAS
    /// oneDNN's F32 matmul primitive (cached by shape).
    case oneDNN

    /// Makes `self` run every later F32 product in this process.
    public func select() { uso_set_f32_gemm_engine(rawValue) }

    /// Back to the default: the faster library here.
    public static func selectFastest() { uso_set_f32_gemm_engine(-1) }

    /// What F32 products run on in this process now.
    public static var inUse: F32MatrixLibrary { F32MatrixLibrary(rawValue: uso_f32_gemm_engine())! }

    /// The processor core OpenBLAS chose its kernels for.
    public static var openBLASCore: String { String(cString: uso_blas_core_name()) }
}

/// What runs BF16 matrix products (linear layers and attention) on the CPU: bf16 inputs, f32
/// accumulation on every path. By default AMX where the processor has it, else the faster of the
/// other two, timed once per process. A choice the processor cannot run falls to the next case.
public enum BF16MatrixKernels: Int32, Sendable, CaseIterable {
    /// uso's own AMX tile kernels where the processor has AMX.
    case amxTiles
    /// oneDNN's bf16 matmul primitive (oneDNN 2.6 runs it on AVX-512 processors only, emulated
    /// without AVX-512 BF16).
    case oneDNN
    /// The operands widened to F32 (exactly) for OpenBLAS sgemm.
    case widenedF32

    /// Makes `self` run every later BF16 product in this process.
    public func select() { uso_select_bf16_kernels(rawValue) }

    /// Back to the default: AMX, else the faster of the other two here.
    public static func selectFastest() { uso_select_bf16_kernels(-1) }

    /// What large BF16 products run on in this process now, given the processor and `select()`.
    public static var inUse: BF16MatrixKernels { BF16MatrixKernels(rawValue: uso_bf16_gemm_path())! }
}
