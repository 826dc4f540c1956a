// Token positions and RoPE tables: layers.py EmbedND + math.py rope, sampling.py prepare_multi_ip.
import Layers
import Foundation

/// The 3-axis position of one token. USO keeps `index` at 0 everywhere; `row` and `column` are
/// the 2×2-patch grid coordinates of image tokens and 0 for text and style tokens.
public struct FluxTokenPosition: Sendable, Hashable, CustomStringConvertible {
    public var index: Int
    public var row: Int
    public var column: Int

    public init(index: Int = 0, row: Int, column: Int) {
        self.index = index
        self.row = row
        self.column = column
    }

    /// The position of text and style tokens.
    public static let origin = FluxTokenPosition(row: 0, column: 0)

    public var description: String { "(\(index), \(row), \(column))" }
}

/// Where content-reference tokens sit relative to the target grid (`--pe`, spec §4.3).
public enum ReferencePositionMode: String, Sendable, CaseIterable {
    /// Shifted down and right by the grid sizes before them (the default).
    case diagonal = "d"
    /// Shifted down only.
    case height = "h"
    /// Shifted right only.
    case width = "w"
    /// On top of the target positions.
    case overlap = "o"
}

public enum FluxPositions {
    /// Positions `(0, r, c)` of the tokens of a latent `latentHeight × latentWidth`, row-major
    /// over its 2×2 patches (the order `packLatents` emits).
    public static func image(latentHeight: Int, latentWidth: Int, rowOffset: Int = 0, columnOffset: Int = 0) -> [FluxTokenPosition] {
        var positions: [FluxTokenPosition] = []
        positions.reserveCapacity((latentHeight / 2) * (latentWidth / 2))
        for row in 0..<(latentHeight / 2) {
            for column in 0..<(latentWidth / 2) {
                positions.append(FluxTokenPosition(row: row + rowOffset, column: column + columnOffset))
            }
        }
        return positions
    }

    /// Positions of each content reference's tokens, as the reference's `prepare_multi_ip`: two
    /// running offsets start at the target's token-grid height and width; each reference is
    /// shifted by the offsets its mode keeps, then both offsets grow by that reference's grid size.
    public static func references(latentSizes: [(height: Int, width: Int)], targetLatentHeight: Int, targetLatentWidth: Int,
                                  mode: ReferencePositionMode) -> [[FluxTokenPosition]] {
        var rowShift = targetLatentHeight / 2, columnShift = targetLatentWidth / 2
        return latentSizes.map { size in
            let shiftsRows = mode == .diagonal || mode == .height
            let shiftsColumns = mode == .diagonal || mode == .width
            let positions = image(latentHeight: size.height, latentWidth: size.width,
                                  rowOffset: shiftsRows ? rowShift : 0, columnOffset: shiftsColumns ? columnShift : 0)
            rowShift += size.height / 2
            columnShift += size.width / 2
            return positions
        }
    }
}

/// Rotation angles for every token of a sequence (EmbedND): for axis a of width d_a and pair j,
/// `ω = theta^(−2j/d_a)` and `φ = position_a·ω`, evaluated in Double and stored as F32 cos/sin.
/// Pair m of a head rotates (x₂ₘ, x₂ₘ₊₁); the pairs are laid out axis after axis.
public struct RoPETables: Sendable {
    public let cos: Tensor  // [L, headDim/2] F32
    public let sin: Tensor  // [L, headDim/2] F32

    public init(positions: [FluxTokenPosition], axes: [Int], theta: Double) {
        let pairs = axes.reduce(0, +) / 2
        var cosValues = [Float](repeating: 0, count: positions.count * pairs)
        var sinValues = cosValues
        let frequencies: [(axis: Int, omega: Double)] = axes.enumerated().flatMap { axis, width in
            stride(from: 0, to: width, by: 2).map { (axis, 1 / pow(theta, Double($0) / Double(width))) }
        }
        for (t, position) in positions.enumerated() {
            let coordinates = [position.index, position.row, position.column]
            for (m, frequency) in frequencies.enumerated() {
                let angle = Double(coordinates[frequency.axis]) * frequency.omega
                cosValues[t * pairs + m] = Float(Foundation.cos(angle))
                sinValues[t * pairs + m] = Float(Foundation.sin(angle))
            }
        }
        cos = Tensor(cosValues, shape: [positions.count, pairs])
        sin = Tensor(sinValues, shape: [positions.count, pairs])
    }
}
