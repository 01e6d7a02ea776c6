/// What `EventPoller` waits on and an owner sends and receives whole messages on: a libzmq
/// `Socket`, or a `NativeDealer` that speaks ZMTP itself.
public protocol PolledSocket: AnyObject {
    /// A descriptor that becomes readable whenever something about the socket may have changed
    /// (libzmq's, edge-triggered) or while input waits (`signalsLevels`); `hasInput` and
    /// `receive` then say what.
    func fileDescriptor() throws(ZeroMQError) -> Int32
    /// The descriptor stays readable while input waits (an epoll of the socket's connections,
    /// watched level-triggered inside): watched level-triggered too.
    var signalsLevels: Bool { get }
    /// Whether a whole message can be received now.
    func hasInput() throws(ZeroMQError) -> Bool
    func send(_ frames: [[UInt8]], wait: Bool) throws(ZeroMQError)
    func receive(wait: Bool) throws(ZeroMQError) -> [[UInt8]]?
    /// Closes it; idempotent.
    func close()
    /// Writes what `send` held back (see `NativeRouter.holdsWrites`).
    func flushHeld()
    /// A ROUTER's send to the peer `routingID` names (`send([routingID] + frames)`).
    func send(to routingID: [UInt8], _ frames: [[UInt8]], wait: Bool) throws(ZeroMQError)
}

extension PolledSocket {
    /// libzmq's ZMQ_FD only signals changes: it is watched edge-triggered.
    public var signalsLevels: Bool { false }

    public func send(to routingID: [UInt8], _ frames: [[UInt8]], wait: Bool) throws(ZeroMQError) {
        try send([routingID] + frames, wait: wait)
    }
}

extension Socket: PolledSocket {
    /// libzmq's I/O thread writes; nothing is held here.
    public func flushHeld() {}
}
