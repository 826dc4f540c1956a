import CKernels

/// Where tensor work runs. Only the CPU exists today; a GPU backend becomes another case, chosen
/// once per pipeline, with the same op signatures.
public enum Backend: Sendable, Equatable {
    case cpu
}

/// The library behind F32 matrix products on the CPU.
public enum F32MatrixLibrary: Sendable, CaseIterable {
    /// OpenBLAS sgemm, the default.
    case openBLAS
    /// oneDNN's F32 matmul primitive (cached by shape), for comparison in benchmarks.
    case oneDNN

    /// Makes `self` run every later F32 product in this process.
    public func select() { uso_set_f32_gemm_engine(self == .openBLAS ? 0 : 1) }
}

/// What runs BF16 matrix products (linear layers and attention) on the CPU: bf16 inputs, f32
/// accumulation on every path. A choice the processor cannot run falls to the next case.
public enum BF16MatrixKernels: Int32, Sendable, CaseIterable {
    /// uso's own AMX tile kernels where the processor has AMX, the default.
    case amxTiles
    /// oneDNN's bf16 matmul primitive (oneDNN 2.6 runs it on AVX-512 processors only).
    case oneDNN
    /// The operands widened to F32 (exactly) for OpenBLAS sgemm: what processors without AVX-512 run.
    case widenedF32

    /// Makes `self` run every later BF16 product in this process.
    public func select() { uso_select_bf16_kernels(rawValue) }

    /// What large BF16 products run on in this process now, given the processor and `select()`.
    public static var inUse: BF16MatrixKernels { BF16MatrixKernels(rawValue: uso_bf16_gemm_path())! }
}
