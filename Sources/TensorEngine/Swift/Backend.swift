import CKernels

/// Where tensor work runs. Only the CPU exists today; a GPU backend becomes another case, chosen
/// once per pipeline, with the same op signatures.
public enum Backend: Sendable, Equatable {
    case cpu
}

/// The library behind F32 matrix products on the CPU. BF16 products always run on oneDNN.
public enum F32MatrixLibrary: Sendable, CaseIterable {
    /// OpenBLAS sgemm, the default.
    case openBLAS
    /// oneDNN's F32 matmul primitive (cached by shape), for comparison in benchmarks.
    case oneDNN

    /// Makes `self` run every later F32 product in this process.
    public func select() { uso_set_f32_gemm_engine(self == .openBLAS ? 0 : 1) }
}
