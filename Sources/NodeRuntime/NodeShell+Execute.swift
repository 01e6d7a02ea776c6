import Dispatch
import Logging
import Persistence
import SettlementCore
import SettlementModel
import Telemetry

/// Carrying out what the machine and the desks decided: forwards go at once; everything else of
/// the turn is recorded in one ledger transaction, and only once it is durable do its answers,
/// journaled requests and passed uploads leave. The transaction commits at once, on the
/// reactor's thread; under a reactor the sync runs on a sync thread (`CommitWriters`) and the
/// node goes on meanwhile: the rounds it commits during one sync are covered by the next, one
/// sync for all of them (pipelined group commit).
extension NodeShell {
    /// An upload batch screened here, to go up once its screening is durable.
    typealias UploadToForward = (request: WireRequest, passing: Int, received: Int32, rejects: [UploadReject],
                                 peer: Peer, receivedAtMs: Int64)

    /// What one round recorded in the ledger's open transaction: sent once its commit is
    /// durable, or turned into definite refusals if it fails.
    struct RoundInCommit {
        var work: [Directive]
        var outgoing: [Outgoing] = []
        /// Journaled in the round's transaction, sent once it is durable.
        var journaled: [Outgoing] = []
        var uploadsToForward: [UploadToForward] = []
        /// Provincial tier: the national outbox's due batches, made in the round that queued
        /// their records (so they leave with its commit, not on a later timer).
        var toNational: [NationalOutbox.Batch] = []
        var screenedUploads = false
        /// The desk's setl_id serial counts what is recorded: a round rolled back gives its numbers back.
        var deskBefore: InsuredCountyDesk
    }

    func execute(_ initial: [Directive]) throws {
        guard !initial.isEmpty else { return }
        var directives = initial
        // Forwarded requests need no record: send them now, and turn a failed hand-off into
        // a definite answer for whoever waits.
        var index = 0
        var work: [Directive] = []
        while index < directives.count {
            let directive = directives[index]
            index += 1
            if case .forward(let request, let peer) = directive {
                if !send(Outgoing(peer: peer, frames: frames(request), requestMsgid: request.msgid)) {
                    directives += machine.forwardFailed(msgid: request.msgid, nowMs: nowMs)
                }
            } else if case .redialParent(let reason) = directive {
                redialParent(reason: reason)
            } else {
                work.append(directive)
            }
        }
        guard !work.isEmpty else { return }
        // Syncing on this thread, the forwards leave before the sync, not held behind it.
        if committer == nil { flushHeld() }
        if ledger.refusesChanges && work.count > 1 {
            // The disk is full: a round of one directive each, so that what can be answered from
            // the ledger as it stands is, whatever else came in the same turn.
            for directive in work { try commit([directive]) }
        } else {
            try commit(work)
        }
    }

    /// Records `work` in one transaction and sends what it produced once that is durable.
    private func commit(_ work: [Directive]) throws {
        var round = RoundInCommit(work: work, deskBefore: desk)
        round.outgoing.reserveCapacity(work.count)
        let started = metrics == nil ? 0 : monotonicUs()
        do {
            try ledger.transaction { tx in
                try record(work, into: &round, tx: tx)
                if crashPoints?.armed != nil { crashIfArmed(beforeCommitting: round) }
            }
        } catch {
            try finish(round, failure: error)   // rolled back: nothing of it was recorded
            if Ledger.isDiskFull(error) { diskRanOut() }
            return
        }
        commits += 1   // a round rolled back is not one
        metrics?.committed(tookUs: monotonicUs() - started, messages: work.count)
        if committer != nil {
            syncs.committed(round)
            requestSync()
        } else {
            try syncOrStop()
            if crashPoints?.armed != nil, !round.outgoing.isEmpty || !round.journaled.isEmpty,
               crashPoints?.passes(.afterSync) == true { CrashPoints.crash() }
            try finish(round, failure: nil)
        }
    }

    /// A new connection to the parent: the parent's ROUTER hands this node's routing id over to
    /// it, whatever connection held it (in clear; a secured parent first drops the silent one).
    /// The new handshake is seen and the node signs in again (`NodeMachine.parentLinkUp`). A
    /// parent in this process has no link to lose.
    private func redialParent(reason: String) {
        guard let upstream, let endpoint = parentEndpoint else { return }
        logger.warning("parent link silent: dialling it again", metadata: ["parent": "\(endpoint)", "reason": "\(reason)"])
        upstream.redial()
    }

    /// Asks the sync threads to make this node's commits so far durable, unless a sync runs:
    /// then the next one, asked when it ends, covers them.
    private func requestSync() {
        guard let committer, syncs.nextSync() != nil else { return }
        committer.writers.submit(ledger: ledger, node: committer.index)
    }

    /// The reactor: this node's sync has finished (`error` nil: the commits it covers are
    /// durable), seen at `nowMs`. Their rounds' answers leave now.
    public func syncFinished(error: (any Error)?, tookUs: Int64, nowMs: Int64, nowUs: Int64? = nil) throws {
        advanceClock(to: nowMs, nowUs: nowUs)   // what it sends now is budgeted from now, not from its last turn
        slowSyncs.note(tookUs: tookUs, nowMs: nowMs, logger: logger)
        if error == nil { metrics?.synced(tookUs: tookUs) }
        turnSoon = true
        let durable = syncs.synced()
        guard state != .stopped else { return }
        if let error { throw syncFailed(error) }
        if crashPoints?.armed != nil, durable.contains(where: { !$0.outgoing.isEmpty || !$0.journaled.isEmpty }),
           crashPoints?.passes(.afterSync) == true { CrashPoints.crash() }
        for round in durable { try finish(round, failure: nil) }
        requestSync()
        if stopsAfterSync && !awaitsSync { stop() }
    }

    /// Syncs on this thread, and has a due checkpoint done on another; a failed sync stops the
    /// node (see `syncFailed`).
    private func syncOrStop() throws {
        let started = monotonicUs()
        do { try ledger.syncLog() } catch { throw syncFailed(error) }
        let tookUs = monotonicUs() - started
        slowSyncs.note(tookUs: tookUs, nowMs: nowMs, logger: logger)
        metrics?.synced(tookUs: tookUs)
        ledger.checkpointIfDue(on: Self.checkpoints)
    }

    /// Where nodes that sync on their reactor's thread have their checkpoints done.
    static let checkpoints = DispatchQueue(label: "ledger-checkpoints", qos: .utility)

    /// A sync that fails leaves the ledger's state on disk unknown: the commits are in memory but
    /// maybe not on disk, and cannot be rolled back. The node stops without sending what it did
    /// not sync (as PostgreSQL panics on a failed fsync); after a restart from what the disk
    /// holds, its senders resolve what they never heard back about, like any other silence.
    private func syncFailed(_ error: any Error) -> any Error {
        logger.critical("ledger sync failed: stopping without sending what it did not sync", metadata: ["error": "\(error)"])
        return SettleNetError(.node, "node \(spec.id): ledger sync failed, stopped: \(error)")
    }

    /// Records every directive of `work` in the open transaction `tx`, gathering what to send.
    private func record(_ work: [Directive], into round: inout RoundInCommit, tx: LedgerTransaction) throws {
        for directive in work {
            switch directive {
            case .journalAndForward(let request, let peer, let inFlight):
                try tx.recordTransit(inFlight)
                round.journaled.append(Outgoing(peer: peer, frames: frames(request), requestMsgid: request.msgid))
            case .answer(let response, let peer, let record):
                if let record { try tx.recordTransit(record) }
                round.outgoing.append(Outgoing(peer: peer, frames: frames(response),
                                               txn: metrics == nil ? nil : record?.infno ?? refusedTxns.removeValue(forKey: response.reqMsgid) ?? ""))
            case .settleHere(let request, let peer, let role, let receivedAtMs):
                let body = try decide(request, role: role, receivedAtMs: receivedAtMs, tx: tx)
                round.outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body), txn: request.infno))
            case .resolution(let resolution):
                try tx.saveResolution(resolution)
            case .openTicket(let kind, let code, let subject, let responsible, let reason):
                carryOut(try tickets.open(kind, code: code, subject: subject, responsible: responsible, reason: reason,
                                          nowMs: nowMs, store: tx))
            case .ticketHere(let request, let peer, let receivedAtMs):
                let body = try ticketArrived(request, receivedAtMs: receivedAtMs, tx: tx)
                round.outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body), txn: request.infno))
            case .resolved(let resolution, let finalAnswer, let record):
                try tx.resolve(omsgid: resolution.omsgid, finalAnswer: try finalAnswer.serializedBytes(), nowMs: nowMs)
                try tx.recordTransit(record, resolution: true)
                logger.info("settlement in doubt resolved", metadata: ["settlement.msgid": "\(resolution.omsgid)",
                                                                       "outcome": "\(finalAnswer.warnMsg)"])
            case .finalAnswer(let msgid, let peer, let receivedAtMs):
                round.outgoing.append(Outgoing(peer: peer, frames: try finalAnswer(msgid, receivedAtMs: receivedAtMs, tx: tx), txn: ""))
            case .screenUpload(let request, let peer, let receivedAtMs):
                round.screenedUploads = true
                switch try screen(request, receivedAtMs: receivedAtMs, tx: tx) {
                case .answer(let body):
                    round.outgoing.append(Outgoing(peer: peer, frames: WireCodec.frames(responseBody: body), txn: request.infno))
                case .forward(let passing, _, let received, let rejects):
                    round.uploadsToForward.append((request, passing, received, rejects, peer, receivedAtMs))
                }
            case .forward, .redialParent:
                break   // carried out before the round
            }
        }
        if round.screenedUploads && spec.tier == .province && machine.isSignedIn && spec.parent != nil {
            round.toNational = try outbox.due(nowMs: nowMs, catalogVersion: machine.catalog?.version ?? "", store: tx)
        }
    }

    /// A round's commit is over: its answers, journaled requests and passed uploads leave if it
    /// is durable; if not, nothing of it was recorded and the machine says what each becomes.
    private func finish(_ committed: RoundInCommit, failure: (any Error)?) throws {
        var round = committed
        if let failure {
            round.journaled.removeAll()
            round.uploadsToForward.removeAll()   // their screening was not recorded: refused below
            round.toNational.removeAll()          // nor their batches: the next flush makes them again
            desk = round.deskBefore
            let diskFull = Ledger.isDiskFull(failure)
            if diskFull {
                refusedForFullDisk(failure)
            } else {
                logger.critical("ledger write failed", metadata: ["error": "\(failure)"])
            }
            let detail = diskFull ? "the disk under the ledger of node \(spec.id) is full" : "ledger of node \(spec.id) unavailable"
            round.outgoing = machine.roundNotRecorded(round.work, detail: detail, refusal: diskFull ? .diskFull : .busy,
                                                      nowMs: nowMs).compactMap {
                if case .answer(let response, let peer, _) = $0 { Outgoing(peer: peer, frames: frames(response), txn: "") } else { nil }
            }
        }
        var next: [Directive] = []
        // Counted before they leave: whoever holds an answer finds it in the metrics.
        if let metrics {
            for message in round.outgoing {
                guard let txn = message.txn, let outcome = WireCodec.answerOutcome(message.frames) else { continue }
                metrics.answered(txn: txn, infcode: outcome.infcode, errCode: outcome.errCode)
            }
            refusedTxns.removeAll(keepingCapacity: true)
        }
        for message in round.outgoing { send(message) }
        for message in round.journaled where !send(message) {
            next += machine.forwardFailed(msgid: message.requestMsgid!, nowMs: nowMs)
        }
        if crashPoints?.armed != nil, !round.outgoing.isEmpty || !round.journaled.isEmpty, crashPoints?.passes(.afterSend) == true {
            flushHeld()   // on the wire first: the crash comes just after the send
            CrashPoints.crash()
        }
        for request in round.toNational { sendToNational(request) }
        // Records this tier passed are recorded: now they may travel up.
        for upload in round.uploadsToForward {
            next += machine.forwardUpload(upload.request, passing: upload.passing, received: upload.received,
                                          rejects: upload.rejects, replyTo: upload.peer, receivedAtMs: upload.receivedAtMs, nowMs: nowMs)
        }
        try execute(next)
    }

    /// A round's statements ran: crash before its COMMIT, or arm the log's hook to crash in the
    /// middle of it (after the first write of its frames), when that is the pass armed.
    private func crashIfArmed(beforeCommitting round: RoundInCommit) {
        if crashPoints?.passes(.beforeCommit) == true { CrashPoints.crash() }
        if crashPoints?.passes(.inCommit) == true { Ledger.crashAfterLogWrites(1) }
    }

    /// A request's frames: as received where only its budget changed, else encoded.
    func frames(_ request: WireRequest) -> [[UInt8]] {
        guard let body = passThrough.body(of: request) ?? passThrough.uploadBody(of: request) else {
            if case .upload? = request.input {
                // A batch goes up as this tier screened it, spliced (`PassThrough.uploadBody`);
                // without that it would go up empty: a bug, never a message. The batch goes
                // unanswered and its sender asks again.
                logger.error("upload batch not passed on: what passed its screening is gone",
                             metadata: ["settlement.msgid": "\(request.msgid)"])
                return []
            }
            return WireCodec.frames(request)
        }
        return [[], WireCodec.requestKind, body]
    }

    /// An answer's frames: as received when passed on unchanged, else encoded.
    func frames(_ response: WireResponse) -> [[UInt8]] {
        guard let body = passThrough.body(of: response) else { return WireCodec.frames(response) }
        return WireCodec.frames(responseBody: body)
    }

    /// The final answer of a settlement resolved here, as stored.
    func finalAnswer(_ msgid: String, receivedAtMs: Int64, tx: LedgerTransaction) throws -> [[UInt8]] {
        if let final = try tx.finalAnswer(omsgid: msgid) { return WireCodec.frames(responseBody: final) }
        // Resolved, so definitely not in effect; but its stored answer is missing here.
        logger.error("final answer missing", metadata: ["settlement.msgid": "\(msgid)"])
        return WireCodec.frames(machine.error(.busy, detail: "final answer of \(msgid) missing in the ledger of node \(spec.id)",
                                              requestMsgid: msgid, receivedAtMs: receivedAtMs, nowMs: nowMs))
    }
}
