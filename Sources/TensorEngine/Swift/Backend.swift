/// Where tensor work runs. Only the CPU exists today; a GPU backend becomes another case, chosen
/// once per pipeline, with the same op signatures.
public enum Backend: Sendable, Equatable {
    case cpu
}
