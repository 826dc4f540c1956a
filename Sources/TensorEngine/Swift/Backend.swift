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

/// What runs BF16 matrix products (linear layers and attention) on the CPU.
public enum BF16MatrixKernels: Sendable, CaseIterable {
    /// uso's own AMX tile kernels where the processor has AMX (else oneDNN), the default.
    case amxTiles
    /// oneDNN's bf16 matmul primitive everywhere, for comparison in benchmarks.
    case oneDNN

    /// Makes `self` run every later BF16 product in this process.
    public func select() { uso_set_amx(self == .amxTiles ? 1 : 0) }
}
