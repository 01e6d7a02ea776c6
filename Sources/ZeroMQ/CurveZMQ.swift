import CSodium

/// CurveZMQ (RFC 26), the mechanism libzmq calls CURVE, for the native transport: the
/// handshake's commands (HELLO, WELCOME, INITIATE, READY) and the MESSAGE boxes, byte for byte
/// as libzmq makes them, with the same libsodium boxes (curve25519, xsalsa20, poly1305).
/// Pure bytes in and out: `ZMTPConnection` frames and sends them.
///
/// Each side has a long-term key pair; each connection a short-term one, so that what one
/// connection carried cannot be read with a key stolen later. The client proves it holds its
/// long-term secret in INITIATE's vouch; the server proves it by opening HELLO.
enum CurveZMQ {
    static let keyBytes = 32
    static let macBytes = 16

    static func initialize() {
        // Thread-safe and idempotent; libsodium picks its fastest implementations here.
        _ = sodium_init()
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        randombytes_buf(&bytes, count)
        return bytes
    }

    static func keyPair() -> (publicKey: [UInt8], secretKey: [UInt8]) {
        initialize()
        var publicKey = [UInt8](repeating: 0, count: keyBytes)
        var secretKey = [UInt8](repeating: 0, count: keyBytes)
        crypto_box_keypair(&publicKey, &secretKey)
        return (publicKey, secretKey)
    }

    /// The public half of a long-term secret key.
    static func publicKey(ofSecret secretKey: [UInt8]) -> [UInt8] {
        initialize()
        var publicKey = [UInt8](repeating: 0, count: keyBytes)
        crypto_scalarmult_base(&publicKey, secretKey)
        return publicKey
    }

    /// A 24-byte nonce: a 16-byte (or 8-byte) prefix, then a counter big-endian or random bytes.
    static func nonce(_ prefix: String, _ tail: [UInt8]) -> [UInt8] { Array(prefix.utf8) + tail }

    static func counter(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }

    static func readCounter(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Box[plain](sender -> receiver): the MAC, then the ciphertext.
    static func box(_ plain: [UInt8], nonce: [UInt8], to receiver: [UInt8], from senderSecret: [UInt8]) -> [UInt8] {
        var sealed = [UInt8](repeating: 0, count: plain.count + macBytes)
        crypto_box_easy(&sealed, plain, UInt64(plain.count), nonce, receiver, senderSecret)
        return sealed
    }

    static func open(_ sealed: ArraySlice<UInt8>, nonce: [UInt8], from sender: [UInt8], to receiverSecret: [UInt8],
                     _ what: String) throws(ZMTPWire.Problem) -> [UInt8] {
        guard sealed.count >= macBytes else { throw .handshake("\(what) is too short") }
        var plain = [UInt8](repeating: 0, count: sealed.count - macBytes)
        let opened = Array(sealed).withUnsafeBufferPointer {
            crypto_box_open_easy(&plain, $0.baseAddress!, UInt64(sealed.count), nonce, sender, receiverSecret)
        }
        guard opened == 0 else { throw .handshake("\(what) does not open (\(whatOpensIt(what)))") }
        return plain
    }

    private static func whatOpensIt(_ what: String) -> String {
        what == "HELLO" ? "the client does not know this server's public key" : "damaged, or not made for this connection"
    }

    static func commandBody(_ name: String, _ parts: [UInt8]...) -> [UInt8] {
        [UInt8(name.utf8.count)] + Array(name.utf8) + parts.flatMap { $0 }
    }

    /// The data of a command named `name`, or why it is not one.
    static func data(of body: ArraySlice<UInt8>, named name: String) throws(ZMTPWire.Problem) -> ArraySlice<UInt8> {
        let (found, data) = try ZMTPWire.commandName(body)
        if found == "ERROR" {
            let reason = data.count > 1 ? String(decoding: data.dropFirst(), as: UTF8.self) : "no reason given"
            throw .handshake("the peer refused: \(reason)")
        }
        guard found == name else { throw .handshake("\(found) where \(name) was due") }
        return data
    }
}

/// The client's half of one connection's handshake: HELLO, then INITIATE on the server's
/// WELCOME, then the cipher on its READY.
struct CurveClientHandshake {
    private let publicKey: [UInt8], secretKey: [UInt8], serverKey: [UInt8]
    private let short: (publicKey: [UInt8], secretKey: [UInt8])
    private var serverShortKey: [UInt8] = []
    private var nonce: UInt64 = 1

    init(publicKey: [UInt8], secretKey: [UInt8], serverKey: [UInt8]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.serverKey = serverKey
        short = CurveZMQ.keyPair()
    }

    /// HELLO's body: version 1.0, 72 bytes against amplification, C', and Box[64 zeros](C'->S).
    mutating func hello() -> [UInt8] {
        let counter = CurveZMQ.counter(nonce)
        nonce += 1
        let signature = CurveZMQ.box([UInt8](repeating: 0, count: 64), nonce: CurveZMQ.nonce("CurveZMQHELLO---", counter),
                                     to: serverKey, from: short.secretKey)
        return CurveZMQ.commandBody("HELLO", [1, 0], [UInt8](repeating: 0, count: 72), short.publicKey, counter, signature)
    }

    /// INITIATE's body for the server's WELCOME: the cookie back, and Box[C + vouch + metadata](C'->S').
    mutating func initiate(welcome body: ArraySlice<UInt8>, metadata: [UInt8]) throws(ZMTPWire.Problem) -> [UInt8] {
        let data = try CurveZMQ.data(of: body, named: "WELCOME")
        guard data.count == 160 else { throw .handshake("WELCOME of \(data.count) bytes, not 160") }
        let at = data.startIndex
        let welcome = try CurveZMQ.open(data[(at + 16)...], nonce: CurveZMQ.nonce("WELCOME-", Array(data[at..<(at + 16)])),
                                        from: serverKey, to: short.secretKey, "WELCOME")
        serverShortKey = Array(welcome[0..<32])
        let cookie = Array(welcome[32..<128])
        let vouchNonce = CurveZMQ.randomBytes(16)
        let vouch = CurveZMQ.box(short.publicKey + serverKey, nonce: CurveZMQ.nonce("VOUCH---", vouchNonce),
                                 to: serverShortKey, from: secretKey)
        let counter = CurveZMQ.counter(nonce)
        nonce += 1
        let sealed = CurveZMQ.box(publicKey + vouchNonce + vouch + metadata, nonce: CurveZMQ.nonce("CurveZMQINITIATE", counter),
                                  to: serverShortKey, from: short.secretKey)
        return CurveZMQ.commandBody("INITIATE", cookie, counter, sealed)
    }

    /// The server's READY opened: its metadata, and the connection's cipher.
    func ready(_ body: ArraySlice<UInt8>) throws(ZMTPWire.Problem) -> (metadata: [UInt8], cipher: CurveCipher) {
        let data = try CurveZMQ.data(of: body, named: "READY")
        guard data.count >= 8 + CurveZMQ.macBytes else { throw .handshake("READY of \(data.count) bytes") }
        let counter = Array(data.prefix(8))
        let metadata = try CurveZMQ.open(data.dropFirst(8), nonce: CurveZMQ.nonce("CurveZMQREADY---", counter),
                                         from: serverShortKey, to: short.secretKey, "READY")
        let cipher = CurveCipher(peerKey: serverShortKey, ownSecret: short.secretKey, sendPrefix: "CurveZMQMESSAGEC",
                                 receivePrefix: "CurveZMQMESSAGES", nextNonce: nonce, lastPeerNonce: CurveZMQ.readCounter(counter[...]))
        return (metadata, cipher)
    }
}

/// The server's half: WELCOME on HELLO, the client's long-term key and metadata from INITIATE,
/// then READY and the cipher once the client is admitted.
struct CurveServerHandshake {
    private let publicKey: [UInt8], secretKey: [UInt8]
    private let short: (publicKey: [UInt8], secretKey: [UInt8])
    private var clientShortKey: [UInt8] = []
    /// Seals the cookie: the server keeps no state for a client between WELCOME and INITIATE
    /// but this key (libzmq's way, one per connection).
    private let cookieKey = CurveZMQ.randomBytes(32)
    private var nonce: UInt64 = 1
    private var clientNonce: UInt64 = 0

    init(publicKey: [UInt8], secretKey: [UInt8]) {
        self.publicKey = publicKey
        self.secretKey = secretKey
        short = CurveZMQ.keyPair()
    }

    /// WELCOME's body for a HELLO: Box[S' + cookie](S->C'), the cookie Box[C' + s'](cookie key).
    mutating func welcome(hello body: ArraySlice<UInt8>) throws(ZMTPWire.Problem) -> [UInt8] {
        let data = try CurveZMQ.data(of: body, named: "HELLO")
        guard data.count == 194 else { throw .handshake("HELLO of \(data.count) bytes, not 194") }
        let at = data.startIndex
        guard data[at] == 1 && data[at + 1] == 0 else { throw .handshake("CurveZMQ \(data[at]).\(data[at + 1]), not 1.0") }
        clientShortKey = Array(data[(at + 74)..<(at + 106)])
        let zeros = try CurveZMQ.open(data[(at + 114)...], nonce: CurveZMQ.nonce("CurveZMQHELLO---", Array(data[(at + 106)..<(at + 114)])),
                                      from: clientShortKey, to: secretKey, "HELLO")
        guard zeros.allSatisfy({ $0 == 0 }) else { throw .handshake("HELLO's signature is not 64 zeros") }
        let cookieNonce = CurveZMQ.randomBytes(16)
        let plainCookie = clientShortKey + short.secretKey
        var cookie = [UInt8](repeating: 0, count: 64 + CurveZMQ.macBytes)
        crypto_secretbox_easy(&cookie, plainCookie, 64, CurveZMQ.nonce("COOKIE--", cookieNonce), cookieKey)
        let welcomeNonce = CurveZMQ.randomBytes(16)
        let sealed = CurveZMQ.box(short.publicKey + cookieNonce + cookie, nonce: CurveZMQ.nonce("WELCOME-", welcomeNonce),
                                  to: clientShortKey, from: secretKey)
        return CurveZMQ.commandBody("WELCOME", welcomeNonce, sealed)
    }

    /// INITIATE opened and checked: the client's long-term public key and its metadata.
    mutating func initiate(_ body: ArraySlice<UInt8>) throws(ZMTPWire.Problem) -> (clientKey: [UInt8], metadata: [UInt8]) {
        let data = try CurveZMQ.data(of: body, named: "INITIATE")
        guard data.count >= 96 + 8 + 128 + CurveZMQ.macBytes else { throw .handshake("INITIATE of \(data.count) bytes") }
        let at = data.startIndex
        var cookie = [UInt8](repeating: 0, count: 64)
        let sealedCookie = Array(data[(at + 16)..<(at + 96)])
        guard crypto_secretbox_open_easy(&cookie, sealedCookie, 80, CurveZMQ.nonce("COOKIE--", Array(data[at..<(at + 16)])), cookieKey) == 0,
              Array(cookie[0..<32]) == clientShortKey, Array(cookie[32..<64]) == short.secretKey else {
            throw .handshake("INITIATE's cookie is not the one this server gave")
        }
        let counter = data[(at + 96)..<(at + 104)]
        let plain = try CurveZMQ.open(data[(at + 104)...], nonce: CurveZMQ.nonce("CurveZMQINITIATE", Array(counter)),
                                      from: clientShortKey, to: short.secretKey, "INITIATE")
        let clientKey = Array(plain[0..<32])
        let vouched = try CurveZMQ.open(plain[48..<128], nonce: CurveZMQ.nonce("VOUCH---", Array(plain[32..<48])),
                                        from: clientKey, to: short.secretKey, "INITIATE's vouch")
        guard Array(vouched[0..<32]) == clientShortKey, Array(vouched[32..<64]) == publicKey else {
            throw .handshake("INITIATE's vouch names another connection or server")
        }
        clientNonce = CurveZMQ.readCounter(counter)
        return (clientKey, Array(plain[128...]))
    }

    /// READY's body with this side's metadata, and the connection's cipher.
    mutating func ready(metadata: [UInt8]) -> (body: [UInt8], cipher: CurveCipher) {
        let counter = CurveZMQ.counter(nonce)
        nonce += 1
        let sealed = CurveZMQ.box(metadata, nonce: CurveZMQ.nonce("CurveZMQREADY---", counter), to: clientShortKey, from: short.secretKey)
        let cipher = CurveCipher(peerKey: clientShortKey, ownSecret: short.secretKey, sendPrefix: "CurveZMQMESSAGES",
                                 receivePrefix: "CurveZMQMESSAGEC", nextNonce: nonce, lastPeerNonce: clientNonce)
        return (CurveZMQ.commandBody("READY", counter, sealed), cipher)
    }
}

/// One connection's MESSAGE boxes once the handshake is through, sealed and opened in place.
/// Each frame is one MESSAGE: its name, an 8-byte counter, then Box[flags + frame](key), the
/// flags MORE (1) and COMMAND (2). A counter must grow from message to message: a replayed or
/// reordered box is refused.
///
/// A box is XSalsa20-Poly1305 under the key the two short-term pairs share. XSalsa20 first
/// derives a subkey from the nonce's first 16 bytes, and every MESSAGE nonce of one direction
/// starts alike ("CurveZMQMESSAGEC" or "...S"): so each direction's subkey is derived once here,
/// where libsodium's `crypto_box_afternm` derives it again for every frame. What is sealed is
/// byte for byte what that function seals (a test holds the two together).
struct CurveCipher {
    private var sendSubkey = [UInt8](repeating: 0, count: 32)
    private var receiveSubkey = [UInt8](repeating: 0, count: 32)
    private var nextNonce: UInt64
    private var lastPeerNonce: UInt64

    static let more: UInt8 = 1, command: UInt8 = 2
    /// "\x07MESSAGE", the counter, the MAC and the flags come before a frame's bytes.
    static let overhead = 8 + 8 + CurveZMQ.macBytes + 1
    private static let name: [UInt8] = [7] + Array("MESSAGE".utf8)

    init(peerKey: [UInt8], ownSecret: [UInt8], sendPrefix: String, receivePrefix: String, nextNonce: UInt64, lastPeerNonce: UInt64) {
        var key = [UInt8](repeating: 0, count: 32)
        crypto_box_beforenm(&key, peerKey, ownSecret)
        crypto_core_hsalsa20(&sendSubkey, Array(sendPrefix.utf8), key, nil)
        crypto_core_hsalsa20(&receiveSubkey, Array(receivePrefix.utf8), key, nil)
        sodium_memzero(&key, 32)
        self.nextNonce = nextNonce
        self.lastPeerNonce = lastPeerNonce
    }

    /// Appends one frame sealed as a MESSAGE, in a ZMTP data frame as libzmq sends it.
    mutating func appendFrame(_ frame: UnsafeRawBufferPointer, flags: UInt8, to out: inout [UInt8]) {
        ZMTPWire.appendHeader(flags: 0, size: Self.overhead + frame.count, to: &out)
        out.append(contentsOf: Self.name)
        let counterAt = out.count
        var big = nextNonce.bigEndian
        withUnsafeBytes(of: &big) { out.append(contentsOf: $0) }
        nextNonce += 1
        let macAt = out.count
        out.append(contentsOf: repeatElement(0, count: CurveZMQ.macBytes))
        out.append(flags)
        out.append(contentsOf: frame)
        let length = 1 + frame.count
        out.withUnsafeMutableBytes { bytes in
            let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            sendSubkey.withUnsafeBufferPointer { subkey in
                Self.seal(base + macAt + CurveZMQ.macBytes, count: length, mac: base + macAt, counter: base + counterAt, subkey: subkey.baseAddress!)
            }
        }
    }

    mutating func appendFrame(_ frame: [UInt8], flags: UInt8, to out: inout [UInt8]) {
        frame.withUnsafeBytes { appendFrame($0, flags: flags, to: &out) }
    }

    /// Opens, in place in `bytes`, the MESSAGE whose command body lies at `body`: its flags and
    /// where its frame now lies. `ownMessage`: one this side sealed (taken back unsent).
    mutating func open(_ bytes: inout [UInt8], _ body: Range<Int>, ownMessage: Bool = false) throws(ZMTPWire.Problem) -> (flags: UInt8, frame: Range<Int>) {
        guard body.count >= Self.overhead else { throw .handshake("a MESSAGE of \(body.count) bytes, too short to hold a box") }
        let start = body.lowerBound
        guard bytes[start..<(start + 8)].elementsEqual(Self.name) else {
            let (name, _) = try ZMTPWire.commandName(bytes[body])
            throw .handshake("\(name) where MESSAGE was due")
        }
        let counter = CurveZMQ.readCounter(bytes[(start + 8)..<(start + 16)])
        if !ownMessage {
            guard counter > lastPeerNonce else { throw .handshake("a MESSAGE whose counter \(counter) does not follow \(lastPeerNonce): replayed or reordered") }
        }
        let opened: Bool = bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            return (ownMessage ? sendSubkey : receiveSubkey).withUnsafeBufferPointer { subkey in
                Self.open(base + start + 32, count: body.count - 32, mac: base + start + 16, counter: base + start + 8, subkey: subkey.baseAddress!)
            }
        }
        guard opened else { throw .handshake("a MESSAGE that does not open: damaged, or not sealed for this connection") }
        if !ownMessage { lastPeerNonce = counter }
        return (bytes[start + 32], (start + Self.overhead)..<body.upperBound)
    }

    /// XSalsa20-Poly1305 with the subkey derived: the first 32 bytes of the counter's keystream
    /// are the Poly1305 key, the rest encrypts `text` in place; the MAC covers the ciphertext.
    static func seal(_ text: UnsafeMutablePointer<UInt8>, count: Int, mac: UnsafeMutablePointer<UInt8>,
                     counter: UnsafePointer<UInt8>, subkey: UnsafePointer<UInt8>) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { block in
            let first = block.baseAddress!
            first.initialize(repeating: 0, count: 64)
            let head = min(count, 32)
            (first + 32).update(from: text, count: head)
            crypto_stream_salsa20_xor(first, first, UInt64(32 + head), counter, subkey)
            text.update(from: first + 32, count: head)
            if count > head { crypto_stream_salsa20_xor_ic(text + head, text + head, UInt64(count - head), counter, 1, subkey) }
            crypto_onetimeauth_poly1305(mac, text, UInt64(count), first)
            sodium_memzero(first, 64)
        }
    }

    /// The MAC checked first, then `text` decrypted in place; false if it does not check.
    static func open(_ text: UnsafeMutablePointer<UInt8>, count: Int, mac: UnsafePointer<UInt8>,
                     counter: UnsafePointer<UInt8>, subkey: UnsafePointer<UInt8>) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { block in
            let first = block.baseAddress!
            crypto_stream_salsa20(first, 64, counter, subkey)
            defer { sodium_memzero(first, 64) }
            guard crypto_onetimeauth_poly1305_verify(mac, text, UInt64(count), first) == 0 else { return false }
            let head = min(count, 32)
            for index in 0..<head { text[index] ^= first[32 + index] }
            if count > head { crypto_stream_salsa20_xor_ic(text + head, text + head, UInt64(count - head), counter, 1, subkey) }
            return true
        }
    }
}
