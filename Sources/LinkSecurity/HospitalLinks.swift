import NetworkTopology
import SettlementModel
import ZeroMQ

/// The hospitals' links to their county nodes, as the load tools (scenario runner, benchmark)
/// open them. Plaintext: one DEALER per county, any of its institutions sends on it, unless
/// `perInstitution`. Secured, or `perInstitution`: one per institution, as hospitals connect
/// (each presenting that institution's key when secured, because a county accepts a request
/// only from the institution its key names). A county holds each connection to its share
/// (SN-E3007), so a driver that must not meet that limit uses one per institution.
///
/// `native`: links speak ZMTP themselves (`NativeDealer`, in clear or under CURVE) instead of
/// through libzmq, whose hand-over of every message to an I/O thread and back was a third of a
/// load driver's CPU.
public final class HospitalLinks {
    public private(set) var sockets: [any PolledSocket] = []
    private var byCounty: [DivisionCode: Int] = [:]
    private var byInstitution: [String: Int] = [:]
    /// Waits for answers on every link at the cost of one (`send` keeps it told of each use).
    public private(set) var poller: EventPoller!

    /// `configure` sets each socket's options before it connects.
    public init(context: Context, topology: Topology, keys: HospitalKeys?, perInstitution: Bool = false, native: Bool = false,
                configure: (Socket) throws -> Void) throws {
        if HospitalLinks.socketCount(topology, secured: keys != nil || perInstitution) > 500 { Context.raiseOpenFilesLimit() }
        for county in topology.counties {
            let endpoint = topology.endpoint(of: county.id)!
            guard keys != nil || perInstitution else {
                byCounty[county.id] = sockets.count
                sockets.append(native ? try NativeDealer(endpoint: endpoint) : try open(context, endpoint, configure, credentials: nil))
                continue
            }
            // The load is planned over every registered institution, so each needs its key: a
            // missing one is named now (`keys generate` without --hospitals makes them all).
            for institution in topology.institutions(of: county.id) {
                if byCounty[county.id] == nil { byCounty[county.id] = sockets.count }
                byInstitution[institution] = sockets.count
                let credentials = try keys?.credentials(institution: institution, county: county.id)
                sockets.append(native ? try NativeDealer(endpoint: endpoint, curve: credentials?.nativeSecurity())
                                      : try open(context, endpoint, configure, credentials: credentials))
            }
        }
        poller = try EventPoller(sockets)
    }

    /// Sends `request` as its hospital, on the link `socket(for:county:)` names.
    /// `body`: the request already encoded (nil: encoded here).
    public func send(_ request: WireRequest, body: [UInt8]? = nil, county: DivisionCode) throws {
        let socket = socket(for: request, county: county)
        try socket.send(body.map { WireCodec.frames(requestBody: $0) } ?? WireCodec.frames(request), wait: true)
        poller.used(socket)
    }

    /// How many sockets a topology needs (for the context's socket limit); `secured` also for
    /// one per institution on plaintext.
    public static func socketCount(_ topology: Topology, secured: Bool) -> Int {
        secured ? topology.counties.reduce(0) { $0 + $1.hospitals } : topology.counties.count
    }

    private func open(_ context: Context, _ endpoint: String, _ configure: (Socket) throws -> Void,
                      credentials: ClientCredentials?) throws -> Socket {
        let socket = try context.socket(.dealer)
        try configure(socket)
        try credentials?.apply(to: socket)
        try socket.connect(endpoint)
        return socket
    }

    /// The socket `request` leaves on: its institution's own when secured (a code registered
    /// nowhere falls back to one of the county's, which refuses it).
    public func socket(for request: WireRequest, county: DivisionCode) -> any PolledSocket {
        if let own = byInstitution[request.fixmedinsCode] { return sockets[own] }
        return sockets[byCounty[county]!]
    }
}
