import CZeroMQ

/// libzmq's own relay loops, for the transport baseline: the fastest a chain of processes can
/// pass messages with no logic and no storage.
public enum Relay {
    /// Runs `zmq_proxy` between a ROUTER `frontend` and a DEALER `backend` until the context
    /// is terminated: requests go back-to-front envelopes and all, answers find their way back.
    public static func proxy(frontend: Socket, backend: Socket) throws(ZeroMQError) {
        let result = zmq_proxy(frontend.handle, backend.handle, nil)
        if result != 0 { throw ZeroMQError(code: zmq_errno(), operation: "zmq_proxy") }
    }

    /// Moves one whole multipart message from `source` to `destination` without copying its
    /// frames (`zmq_msg_t` handed over). A ROUTER passing to itself echoes to the sender.
    public static func forward(from source: Socket, to destination: Socket) throws(ZeroMQError) {
        var message = zmq_msg_t()
        zmq_msg_init(&message)
        defer { zmq_msg_close(&message) }
        while true {
            while zmq_msg_recv(&message, source.handle, 0) < 0 {
                let code = zmq_errno()
                if code != EINTR { throw ZeroMQError(code: code, operation: "zmq_msg_recv") }
            }
            let more = zmq_msg_more(&message) == 1
            while zmq_msg_send(&message, destination.handle, more ? ZMQ_SNDMORE : 0) < 0 {
                let code = zmq_errno()
                if code != EINTR { throw ZeroMQError(code: code, operation: "zmq_msg_send") }
            }
            if !more { return }
        }
    }
}
