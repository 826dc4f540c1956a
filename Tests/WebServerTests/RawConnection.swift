import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to the test server, for what an HTTP client library will not send: a
/// forged Host, a head without its body, a request that stops half-way. Every wait is bounded.
final class RawConnection {
    struct Response {
        let status: Int
        let headers: [String: String]
        let body: Data

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    private let descriptor: Int32
    private var received = Data()

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(descriptor)
            throw TestFailure("cannot connect to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(descriptor) }

    func send(_ text: String) throws {
        try send(Data(text.utf8))
    }

    func send(_ data: Data) throws {
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let sent = Glibc.send(descriptor, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { throw TestFailure("send failed: \(String(cString: strerror(errno)))") }
                offset += sent
            }
        }
    }

    /// A whole response (head, then a body of its Content-Length), or a TestFailure after `timeout` seconds.
    func response(timeout: Double = 5) throws -> Response {
        let deadline = Date().addingTimeInterval(timeout)
        let separator = Data("\r\n\r\n".utf8)
        while true {
            if let end = received.range(of: separator) {
                let head = String(decoding: received[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in head.dropFirst() {
                    let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    if pair.count == 2 { headers[pair[0].lowercased()] = pair[1] }
                }
                let length = headers["content-length"].flatMap(Int.init) ?? 0
                if received.count - end.upperBound >= length {
                    let status = head.first?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
                    let body = received[end.upperBound..<end.upperBound + length]
                    received = Data(received[(end.upperBound + length)...])
                    return Response(status: status, headers: headers, body: Data(body))
                }
            }
            guard try read(until: deadline) else {
                throw TestFailure("no complete response within \(timeout) s; received \(String(decoding: received, as: UTF8.self).prefix(200))")
            }
        }
    }

    /// Whether the server closes the connection within `timeout` seconds (anything it sends is kept).
    func closesWithin(_ timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            do {
                guard try read(until: deadline) else { return false }
            } catch {
                return true
            }
        }
    }

    /// Reads what is there; false at the deadline; throws at the end of the stream.
    private func read(until deadline: Date) throws -> Bool {
        let milliseconds = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, milliseconds) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { throw TestFailure("the connection was closed") }
        received.append(contentsOf: buffer[..<count])
        return true
    }
}
