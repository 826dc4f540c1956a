// The USO LoRA (`dit_lora.safetensors`; layers.py LoRALinearLayer and the *LoraProcessor classes).
import Layers

/// How the LoRA reaches the computation.
public enum LoRAMode: String, Sendable, CaseIterable {
    /// `W += up·down` once at load (F32 arithmetic, rounded to the weight's storage type).
    case merged
    /// Two extra small matmuls per target at every call, as the reference computes it.
    case runtime
}

/// One LoRA branch `up(down(x))`: scale 1, no alpha, no bias (spec §4.1).
public struct LoRAAdapter: Sendable {
    public let down: Tensor  // [rank, in]
    public let up: Tensor    // [out, rank]
    /// int8 copies of both, beside a DiT whose matrices are int8: the branch then multiplies in int8
    /// too, rather than widening its large input (up to [L, 15360]) for a BF16 product.
    var int8: (down: Int8Weight, up: Int8Weight)?

    /// The branch at run time: its input cast to `type`, the result cast back to the input's type
    /// (what LoRALinearLayer.forward does with the LoRA's own dtype).
    // x: [L, in] -> [L, out]
    func callAsFunction(_ x: Tensor, type: DType) -> Tensor {
        if let int8 { return linear(linear(x, weight: int8.down), weight: int8.up).converted(to: x.dtype) }
        let input = x.converted(to: type)
        return linear(linear(input, weight: down), weight: up).converted(to: x.dtype)
    }

    func quantized() -> LoRAAdapter {
        var adapter = self
        adapter.int8 = (Int8Weight(quantizing: down), Int8Weight(quantizing: up))
        return adapter
    }

    /// `up·down` in F32: the change this branch makes to its target's weight.
    // -> [out, in]
    func weightDelta() -> Tensor {
        matmul(up.converted(to: .f32), down.converted(to: .f32))
    }
}

/// The four branches of a double block: `qkv_lora1`/`proj_lora1` on the image stream,
/// `qkv_lora2`/`proj_lora2` on the text (style + T5) stream.
struct DoubleBlockLoRA: Sendable {
    let imageQKV, imageProjection, textQKV, textProjection: LoRAAdapter

    func quantized() -> DoubleBlockLoRA {
        DoubleBlockLoRA(imageQKV: imageQKV.quantized(), imageProjection: imageProjection.quantized(),
                        textQKV: textQKV.quantized(), textProjection: textProjection.quantized())
    }
}

/// The two branches of a single block: `qkv_lora` on the qkv part of linear1's output,
/// `proj_lora` beside linear2 (input: attention ++ GELU(mlp)).
struct SingleBlockLoRA: Sendable {
    let qkv, projection: LoRAAdapter

    func quantized() -> SingleBlockLoRA { SingleBlockLoRA(qkv: qkv.quantized(), projection: projection.quantized()) }
}

/// A USO LoRA checked against a DiT: every block has every branch, with the file's own rank and
/// the DiT's widths; a missing branch, a stray key or a mismatched shape is an error.
public struct USOLoRA: Sendable {
    public let rank: Int
    private(set) var doubleBlocks: [DoubleBlockLoRA]
    private(set) var singleBlocks: [SingleBlockLoRA]

    static let layoutName = "a USO LoRA (dit_lora.safetensors)"

    /// - Parameter expectedRank: the rank the caller was told to expect (`--lora-rank`); the
    ///   file's own rank (rows of a `down.weight`) is used when nil.
    public init(_ source: WeightSource, config: FluxConfig, expectedRank: Int? = nil) throws {
        let probe = config.doubleBlockCount > 0 ? "double_blocks.0.processor.qkv_lora1.down.weight" : "single_blocks.0.processor.qkv_lora.down.weight"
        guard let probeInfo = source.info(probe) else {
            let looksLikeLoRA = source.keys.contains { $0.contains(".processor.") }
            throw looksLikeLoRA ? WeightError.missingKey(probe)
                : WeightError.wrongModel(expected: Self.layoutName, reason: "it has no '<block>.processor.*_lora*' tensors (no '\(probe)')")
        }
        guard probeInfo.shape.count == 2, probeInfo.shape[0] > 0 else {
            throw WeightError.wrongModel(expected: Self.layoutName, reason: "'\(probe)' has shape \(probeInfo.shape), expected [rank, \(config.hiddenSize)]")
        }
        rank = probeInfo.shape[0]
        if let expectedRank, expectedRank != rank {
            throw WeightError.wrongModel(expected: "a rank-\(expectedRank) USO LoRA",
                                         reason: "the file's rank is \(rank) (rows of '\(probe)')")
        }
        let reader = WeightReader(source)
        let hidden = config.hiddenSize, rank = rank
        func adapter(_ name: String, in inFeatures: Int, out outFeatures: Int) throws -> LoRAAdapter {
            let module = reader.scoped(name)
            do {
                return LoRAAdapter(down: try module.tensor("down.weight", shape: [rank, inFeatures]),
                                   up: try module.tensor("up.weight", shape: [outFeatures, rank]))
            } catch WeightError.shapeMismatch(let key, let expected, let found) {
                throw WeightError.wrongModel(
                    expected: "a rank-\(rank) USO LoRA for this DiT (hidden \(hidden), MLP \(config.mlpHiddenSize))",
                    reason: "'\(key)' has shape \(found), expected \(expected)")
            }
        }
        doubleBlocks = try (0..<config.doubleBlockCount).map { i in
            let p = "double_blocks.\(i).processor"
            return DoubleBlockLoRA(imageQKV: try adapter("\(p).qkv_lora1", in: hidden, out: 3 * hidden),
                                   imageProjection: try adapter("\(p).proj_lora1", in: hidden, out: hidden),
                                   textQKV: try adapter("\(p).qkv_lora2", in: hidden, out: 3 * hidden),
                                   textProjection: try adapter("\(p).proj_lora2", in: hidden, out: hidden))
        }
        singleBlocks = try (0..<config.singleBlockCount).map { i in
            let p = "single_blocks.\(i).processor"
            return SingleBlockLoRA(qkv: try adapter("\(p).qkv_lora", in: hidden, out: 3 * hidden),
                                   projection: try adapter("\(p).proj_lora", in: hidden + config.mlpHiddenSize, out: hidden))
        }
        try reader.checkAllUsed()
    }

    /// The same branches with int8 copies of their weights (for an int8 DiT).
    func quantized() -> USOLoRA {
        var copy = self
        copy.doubleBlocks = doubleBlocks.map { $0.quantized() }
        copy.singleBlocks = singleBlocks.map { $0.quantized() }
        return copy
    }

    /// Where each branch merges: base weight key → (branch, rows of the weight it adds to).
    /// A single block's qkv branch touches only the first 3·hidden rows of linear1.
    func mergeTargets(hiddenSize: Int) -> [String: (adapter: LoRAAdapter, rows: Range<Int>?)] {
        var targets: [String: (adapter: LoRAAdapter, rows: Range<Int>?)] = [:]
        for (i, block) in doubleBlocks.enumerated() {
            let p = "double_blocks.\(i)"
            targets["\(p).img_attn.qkv.weight"] = (block.imageQKV, nil)
            targets["\(p).img_attn.proj.weight"] = (block.imageProjection, nil)
            targets["\(p).txt_attn.qkv.weight"] = (block.textQKV, nil)
            targets["\(p).txt_attn.proj.weight"] = (block.textProjection, nil)
        }
        for (i, block) in singleBlocks.enumerated() {
            let p = "single_blocks.\(i)"
            targets["\(p).linear1.weight"] = (block.qkv, 0..<(3 * hiddenSize))
            targets["\(p).linear2.weight"] = (block.projection, nil)
        }
        return targets
    }
}
