import TensorEngine

/// A pickle reader that understands only what `torch.save(state_dict)` writes: dicts and
/// OrderedDicts of tensors rebuilt from storages. It never imports or calls anything: the few
/// globals a state dict names are recognised by name and interpreted here; any other global or
/// opcode is refused, so loading a checkpoint cannot execute code.
struct RestrictedUnpickler {
    private let bytes: [UInt8]
    private let path: String
    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Every container built, so they can be emptied one by one afterwards: releasing a deeply
    /// nested value (a hostile pickle nests a million tuples in a million bytes) would otherwise
    /// recurse once per level and overflow the stack.
    private var containers: [PickleContainer] = []

    /// Nested dictionaries are flattened with dotted keys down to this depth.
    static let maximumNesting = 8

    /// The tensors of a pickled state dict, with nested dictionaries flattened to dotted keys.
    /// Values that are not tensors (a version number, say) are not weights and are left out.
    static func stateDictTensors(pickle: [UInt8], path: String) throws -> [(key: String, reference: TensorReference)] {
        var unpickler = RestrictedUnpickler(bytes: pickle, path: path)
        defer { unpickler.containers.forEach { $0.removeContents() } }
        var tensors: [(key: String, reference: TensorReference)] = []
        var visited = Set<ObjectIdentifier>()
        try collectTensors(try unpickler.load(), prefix: "", depth: 0, path: path, visited: &visited, into: &tensors)
        return tensors
    }

    private init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    /// `visited` refuses a dictionary met twice: a state dict is a tree, and a pickle whose
    /// dictionaries refer to each other could otherwise make this walk endless.
    private static func collectTensors(_ value: PickleValue, prefix: String, depth: Int, path: String, visited: inout Set<ObjectIdentifier>,
                                       into tensors: inout [(key: String, reference: TensorReference)]) throws {
        guard case .dict(let dictionary) = value else {
            throw WeightError.malformedHeader(path: path, reason: "the pickle holds \(value.kindName), not a state dict")
        }
        guard visited.insert(ObjectIdentifier(dictionary)).inserted else {
            throw WeightError.malformedHeader(path: path, reason: "the dictionary under '\(prefix)' appears twice; a state dict is a tree")
        }
        guard depth < maximumNesting else {
            throw WeightError.malformedHeader(path: path, reason: "dictionaries are nested more than \(maximumNesting) deep under '\(prefix)'")
        }
        for (name, item) in dictionary.items {
            let component: String
            switch name {
            case .string(let text): component = text
            case .int(let number): component = String(number)
            default: throw WeightError.malformedHeader(path: path, reason: "a key under '\(prefix)' is \(name.kindName), not a name")
            }
            let key = prefix.isEmpty ? component : prefix + "." + component
            switch item {
            case .tensor(let reference): tensors.append((key, reference))
            case .dict: try collectTensors(item, prefix: key, depth: depth + 1, path: path, visited: &visited, into: &tensors)
            default: continue
            }
        }
    }

    /// The pickled object.
    private mutating func load() throws -> PickleValue {
        while true {
            let opcodeOffset = position
            let opcode = try readByte()
            switch opcode {
            case 0x80:  // PROTO
                let version = try readByte()
                guard version <= 5 else { throw malformed("unknown pickle protocol \(version)") }
            case 0x95:  // FRAME: a length prefix that only helps buffered readers
                _ = try read(count: 8)
            case UInt8(ascii: "."):  // STOP
                guard stack.count == 1, marks.isEmpty else { throw malformed("the pickle stops with \(stack.count) values on its stack") }
                return stack[0]
            case UInt8(ascii: "("): marks.append(stack.count)  // MARK
            case UInt8(ascii: "}"): stack.append(.dict(remember(PickleDict())))  // EMPTY_DICT
            case UInt8(ascii: "]"): stack.append(.list(remember(PickleSequence([]))))  // EMPTY_LIST
            case UInt8(ascii: ")"): stack.append(.tuple(remember(PickleSequence([]))))  // EMPTY_TUPLE
            case UInt8(ascii: "t"): stack.append(.tuple(remember(PickleSequence(try popToMark()))))  // TUPLE
            case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
                stack.append(.tuple(remember(PickleSequence(try pop(count: Int(opcode - 0x84))))))
            case UInt8(ascii: "X"): stack.append(.string(try readString(length: Int(try readInteger(UInt32.self)))))  // BINUNICODE
            case 0x8c: stack.append(.string(try readString(length: Int(try readByte()))))  // SHORT_BINUNICODE
            case 0x8d:  // BINUNICODE8
                guard let length = Int(exactly: try readInteger(UInt64.self)) else { throw malformed("string length out of range") }
                stack.append(.string(try readString(length: length)))
            case UInt8(ascii: "J"): stack.append(.int(Int(Int32(bitPattern: try readInteger(UInt32.self)))))  // BININT
            case UInt8(ascii: "K"): stack.append(.int(Int(try readByte())))  // BININT1
            case UInt8(ascii: "M"): stack.append(.int(Int(try readInteger(UInt16.self))))  // BININT2
            case 0x8a: stack.append(.int(try readLong(byteCount: Int(try readByte()))))  // LONG1
            case UInt8(ascii: "G"):  // BINFLOAT: big-endian IEEE double
                let bits = try read(count: 8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: bits)))
            case 0x88: stack.append(.bool(true))  // NEWTRUE
            case 0x89: stack.append(.bool(false))  // NEWFALSE
            case UInt8(ascii: "N"): stack.append(.none)  // NONE
            case UInt8(ascii: "s"):  // SETITEM
                let pair = try pop(count: 2)
                try topDictionary().set(pair[0], pair[1])
            case UInt8(ascii: "u"):  // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of values") }
                let dictionary = try topDictionary()
                for index in stride(from: 0, to: items.count, by: 2) { dictionary.set(items[index], items[index + 1]) }
            case UInt8(ascii: "a"):  // APPEND
                let value = try pop()
                try topList().items.append(value)
            case UInt8(ascii: "e"):  // APPENDS
                let values = try popToMark()
                try topList().items.append(contentsOf: values)
            case UInt8(ascii: "q"): memo[Int(try readByte())] = try top()  // BINPUT
            case UInt8(ascii: "r"): memo[Int(try readInteger(UInt32.self))] = try top()  // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()  // MEMOIZE
            case UInt8(ascii: "h"): stack.append(try recall(Int(try readByte())))  // BINGET
            case UInt8(ascii: "j"): stack.append(try recall(Int(try readInteger(UInt32.self))))  // LONG_BINGET
            case UInt8(ascii: "c"):  // GLOBAL "module\nname\n"
                let module = try readLine()
                stack.append(.global(try trustedGlobal(module: module, name: try readLine())))
            case 0x93:  // STACK_GLOBAL
                let names = try pop(count: 2)
                guard case .string(let module) = names[0], case .string(let name) = names[1] else {
                    throw malformed("STACK_GLOBAL without two strings")
                }
                stack.append(.global(try trustedGlobal(module: module, name: name)))
            case UInt8(ascii: "R"):  // REDUCE: callable(*arguments)
                let pair = try pop(count: 2)
                guard case .global(let callable) = pair[0], case .tuple(let arguments) = pair[1] else {
                    throw malformed("REDUCE without a callable and an argument tuple")
                }
                stack.append(try call(callable, arguments.items))
            case UInt8(ascii: "b"):  // BUILD: sets attributes, such as a state dict's `_metadata`, which loading ignores
                let state = try pop()
                guard case .dict = try top(), case .dict = state else {
                    throw malformed("BUILD is only expected on a dictionary with a dictionary of attributes")
                }
            case UInt8(ascii: "Q"):  // BINPERSID: torch's reference to a storage record in the archive
                stack.append(try storage(from: try pop()))
            default:
                let name = forbiddenOpcodeNames[opcode].map { " (\($0))" } ?? ""
                throw refuse("opcode 0x\(String(opcode, radix: 16))\(name) at byte \(opcodeOffset) is not used by state dicts")
            }
        }
    }

    // MARK: The globals a state dict may name

    private func trustedGlobal(module: String, name: String) throws -> TrustedGlobal {
        let qualifiedName = "\(module).\(name)"
        let kind: TrustedGlobal.Kind? = switch (module, name) {
        case ("collections", "OrderedDict"): .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): .rebuildTensor(hasDTypeArgument: false)
        case ("torch._utils", "_rebuild_tensor_v3"): .rebuildTensor(hasDTypeArgument: true)
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"): .rebuildParameter
        case ("torch.storage", "UntypedStorage"), ("torch", "UntypedStorage"): .untypedStorage
        case ("torch", _):
            if let element = TorchElementType.allCases.first(where: { $0.storageClassName == name }) {
                .typedStorage(element)
            } else {
                TorchElementType(rawValue: name).map { .dtype($0) }
            }
        default: nil
        }
        guard let kind else {
            throw refuse("it names the global '\(qualifiedName)', which is not part of a state dict (a pickle can run code through globals; only tensors, storages and OrderedDict are allowed)")
        }
        return TrustedGlobal(kind: kind, qualifiedName: qualifiedName)
    }

    private mutating func call(_ callable: TrustedGlobal, _ arguments: [PickleValue]) throws -> PickleValue {
        switch callable.kind {
        case .orderedDict:
            guard arguments.isEmpty else { throw malformed("OrderedDict is called with arguments") }
            return .dict(remember(PickleDict()))
        case .rebuildTensor(let hasDTypeArgument):
            return .tensor(try rebuildTensor(arguments, hasDTypeArgument: hasDTypeArgument))
        case .rebuildParameter:
            // (tensor, requires_grad, backward_hooks[, state]): the parameter is its tensor.
            guard (3...4).contains(arguments.count), case .tensor(let tensor) = arguments[0] else {
                throw malformed("\(callable.qualifiedName) expects a tensor and 2 or 3 more arguments")
            }
            return .tensor(tensor)
        case .typedStorage, .untypedStorage, .dtype:
            throw refuse("it calls \(callable.qualifiedName), which a state dict never does")
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`, or
    /// `_rebuild_tensor_v3(...)` with the element type before the metadata (float8 tensors use it).
    private func rebuildTensor(_ arguments: [PickleValue], hasDTypeArgument: Bool) throws -> TensorReference {
        let required = hasDTypeArgument ? 7 : 6
        guard arguments.count == required || arguments.count == required + 1,
              case .storage(let storage) = arguments[0], case .int(let offset) = arguments[1],
              let shape = arguments[2].integers, let strides = arguments[3].integers
        else { throw malformed("a tensor is rebuilt from arguments that are not (storage, offset, size, stride, …)") }
        var element = storage.element
        if hasDTypeArgument {
            guard case .global(let global) = arguments[6], case .dtype(let dtype) = global.kind else {
                throw malformed("_rebuild_tensor_v3 without a dtype")
            }
            element = dtype
        }
        guard let element else { throw malformed("a tensor over an untyped storage has no element type") }
        return TensorReference(storage: storage, offset: offset, shape: shape, strides: strides, element: element)
    }

    /// `('storage', storage_type, key, location, numel)`, as torch's persistent_id writes it.
    private func storage(from persistentID: PickleValue) throws -> PickleValue {
        guard case .tuple(let tuple) = persistentID, case let fields = tuple.items, fields.count == 5, case .string("storage") = fields[0],
              case .global(let type) = fields[1], case .string(let key) = fields[2], case .int(let count) = fields[4]
        else { throw malformed("a persistent id is not ('storage', type, key, location, size)") }
        switch type.kind {
        case .typedStorage(let element): return .storage(StorageReference(key: key, element: element, count: count))
        case .untypedStorage: return .storage(StorageReference(key: key, element: nil, count: count))
        default: throw malformed("a persistent id names \(type.qualifiedName) as its storage type")
        }
    }

    // MARK: Stack, memo and input

    private mutating func remember<Container: PickleContainer>(_ container: Container) -> Container {
        containers.append(container)
        return container
    }

    private mutating func pop() throws -> PickleValue {
        guard let value = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw malformed("the pickle's stack underflows") }
        return value
    }

    private mutating func pop(count: Int) throws -> [PickleValue] {
        guard stack.count - count >= (marks.last ?? 0) else { throw malformed("the pickle's stack underflows") }
        defer { stack.removeLast(count) }
        return Array(stack.suffix(count))
    }

    private mutating func popToMark() throws -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw malformed("a MARK is missing") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    private func top() throws -> PickleValue {
        guard let value = stack.last else { throw malformed("the pickle's stack is empty") }
        return value
    }

    private func topDictionary() throws -> PickleDict {
        guard case .dict(let dictionary) = try top() else { throw malformed("SETITEM on something that is not a dictionary") }
        return dictionary
    }

    private func topList() throws -> PickleSequence {
        guard case .list(let list) = try top() else { throw malformed("APPEND on something that is not a list") }
        return list
    }

    private func recall(_ index: Int) throws -> PickleValue {
        guard let value = memo[index] else { throw malformed("memo entry \(index) is read before it is written") }
        return value
    }

    private mutating func readByte() throws -> UInt8 {
        guard position < bytes.count else { throw malformed("the pickle ends early (truncated?)") }
        defer { position += 1 }
        return bytes[position]
    }

    private mutating func read(count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - position else { throw malformed("the pickle ends early (truncated?)") }
        defer { position += count }
        return bytes[position..<position + count]
    }

    private mutating func readInteger<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type) throws -> T {
        try read(count: MemoryLayout<T>.size).reversed().reduce(T(0)) { $0 << 8 | T($1) }
    }

    /// LONG1's payload: a little-endian two's-complement integer of `byteCount` bytes.
    private mutating func readLong(byteCount: Int) throws -> Int {
        guard byteCount <= 8 else { throw malformed("an integer of \(byteCount) bytes is too large") }
        let payload = try read(count: byteCount)
        guard let last = payload.last else { return 0 }
        var value = payload.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if last & 0x80 != 0, byteCount < 8 { value |= ~UInt64(0) << (8 * byteCount) }  // sign-extend
        return Int(Int64(bitPattern: value))
    }

    private mutating func readString(length: Int) throws -> String {
        guard let string = String(validating: try read(count: length), as: UTF8.self) else { throw malformed("a string is not UTF-8") }
        return string
    }

    private mutating func readLine() throws -> String {
        guard let end = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else { throw malformed("a GLOBAL name is not terminated") }
        let line = try readString(length: end - position)
        position += 1
        return line
    }

    private func malformed(_ reason: String) -> WeightError {
        .malformedHeader(path: path, reason: "its pickle is malformed: \(reason) (near byte \(position) of data.pkl)")
    }

    private func refuse(_ reason: String) -> WeightError { .unsafePickle(path: path, reason: reason) }
}

/// Every opcode of pickle protocols 0–5, allowed or not: what may follow PROTO in a pickle.
let pickleOpcodes = Set("(.012BCFGIJKLMNPQRSTUVXabcdeghijlopqrstu}])".utf8).union(0x80...0x98)

/// Names of opcodes outside the allowed set, for readable refusals.
private let forbiddenOpcodeNames: [UInt8: String] = [
    UInt8(ascii: "i"): "INST", UInt8(ascii: "o"): "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
    UInt8(ascii: "P"): "PERSID", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
    UInt8(ascii: "S"): "STRING", UInt8(ascii: "T"): "BINSTRING", UInt8(ascii: "U"): "SHORT_BINSTRING",
    UInt8(ascii: "B"): "BINBYTES", UInt8(ascii: "C"): "SHORT_BINBYTES", 0x8e: "BINBYTES8", 0x96: "BYTEARRAY8",
    UInt8(ascii: "I"): "INT", UInt8(ascii: "L"): "LONG", 0x8b: "LONG4", UInt8(ascii: "F"): "FLOAT",
    UInt8(ascii: "V"): "UNICODE", UInt8(ascii: "l"): "LIST", UInt8(ascii: "d"): "DICT",
    UInt8(ascii: "p"): "PUT", UInt8(ascii: "g"): "GET", UInt8(ascii: "0"): "POP", UInt8(ascii: "1"): "POP_MARK",
    UInt8(ascii: "2"): "DUP", 0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
    0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
]

// MARK: Values

/// What a state-dict pickle can build.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case tuple(PickleSequence)
    case list(PickleSequence)
    case dict(PickleDict)
    case global(TrustedGlobal)
    case storage(StorageReference)
    case tensor(TensorReference)

    /// The values of a tuple of integers (a size or a stride).
    var integers: [Int]? {
        guard case .tuple(let tuple) = self else { return nil }
        var values: [Int] = []
        for item in tuple.items {
            guard case .int(let value) = item else { return nil }
            values.append(value)
        }
        return values
    }
}

extension PickleValue {
    /// "a list", "an integer"… for messages about unexpected content.
    var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "a boolean"
        case .int: "an integer"
        case .float: "a float"
        case .string: "a string"
        case .tuple: "a tuple"
        case .list: "a list"
        case .dict: "a dictionary"
        case .global(let global): global.qualifiedName
        case .storage: "a storage"
        case .tensor: "a tensor"
        }
    }
}

/// A list or tuple, or a dictionary: objects, because the memo shares them.
protocol PickleContainer: AnyObject {
    func removeContents()
}

final class PickleSequence: PickleContainer {
    var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
    func removeContents() { items = [] }
}

/// A dictionary in insertion order; a repeated string key replaces the earlier value, as in Python.
final class PickleDict: PickleContainer {
    private(set) var items: [(key: PickleValue, value: PickleValue)] = []
    private var indexOfStringKey: [String: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let name) = key {
            if let index = indexOfStringKey[name] {
                items[index].value = value
                return
            }
            indexOfStringKey[name] = items.count
        }
        items.append((key, value))
    }

    func removeContents() {
        items = []
        indexOfStringKey = [:]
    }
}

/// A global the unpickler recognises; `qualifiedName` is how the pickle spelled it.
struct TrustedGlobal {
    enum Kind {
        case orderedDict
        case rebuildTensor(hasDTypeArgument: Bool)
        case rebuildParameter
        case typedStorage(TorchElementType)
        case untypedStorage
        case dtype(TorchElementType)
    }

    let kind: Kind
    let qualifiedName: String
}

/// A storage record of the archive: `data/<key>` holds `count` elements (bytes if untyped).
struct StorageReference {
    let key: String
    let element: TorchElementType?
    let count: Int
}

/// A tensor as the pickle describes it: a strided view of a storage.
struct TensorReference {
    let storage: StorageReference
    let offset: Int
    let shape: [Int]
    let strides: [Int]
    let element: TorchElementType
}

/// Element types of PyTorch storages, by torch's dtype names.
enum TorchElementType: String, CaseIterable {
    case float32, float16, bfloat16, float8_e4m3fn, float8_e5m2
    case float64, int64, int32, int16, int8, uint8, bool

    var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .float8_e4m3fn, .float8_e5m2, .int8, .uint8, .bool: 1
        }
    }

    /// The tensor engine's type for it, if uso computes with it.
    var dtype: DType? {
        switch self {
        case .float32: .f32
        case .float16: .f16
        case .bfloat16: .bf16
        case .float8_e4m3fn: .f8e4m3
        case .float8_e5m2: .f8e5m2
        default: nil
        }
    }

    /// The legacy typed-storage class torch.save names for it (float8 types have none: their
    /// tensors use UntypedStorage and `_rebuild_tensor_v3`).
    var storageClassName: String? {
        switch self {
        case .float32: "FloatStorage"
        case .float16: "HalfStorage"
        case .bfloat16: "BFloat16Storage"
        case .float64: "DoubleStorage"
        case .int64: "LongStorage"
        case .int32: "IntStorage"
        case .int16: "ShortStorage"
        case .int8: "CharStorage"
        case .uint8: "ByteStorage"
        case .bool: "BoolStorage"
        case .float8_e4m3fn, .float8_e5m2: nil
        }
    }
}
