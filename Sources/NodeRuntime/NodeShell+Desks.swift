import Logging
import Persistence
import SettlementCore
import SettlementModel

/// The desks in the shell: each is called inside the turn's transaction with the ledger as its
/// store; the shell logs what they did and sends the messages they queued.
extension NodeShell {
    // MARK: Insured county

    /// Settles, reverses or corrects at the insured county and returns the serialized answer.
    func decide(_ request: WireRequest, role: TransitRole, receivedAtMs: Int64, tx: LedgerTransaction) throws -> [UInt8] {
        let decision = try desk.decide(request, role: role, receivedAtMs: receivedAtMs, nowMs: nowMs,
                                       responses: &machine.responses, store: tx)
        switch decision.note {
        case .settlementRefused(let msgid, let code)?:
            logger.info("settlement refused", metadata: ["settlement.msgid": "\(msgid)", "error.code": "\(code.rawValue)"])
        case .correctionReversal(let omsgid, let outcome)?:
            logger.info("correction reversal", metadata: ["settlement.msgid": "\(omsgid)", "outcome": "\(outcome)"])
        case nil:
            break
        }
        if let ticket = decision.ticket {
            carryOut(try tickets.open(ticket.kind, code: ticket.code, subject: ticket.subject, responsible: ticket.responsible,
                                      reason: ticket.reason, nowMs: nowMs, store: tx))
        }
        return decision.answer
    }

    // MARK: Tickets

    /// A ticket message for this node: the desk's answer.
    func ticketArrived(_ request: WireRequest, receivedAtMs: Int64, tx: LedgerTransaction) throws -> [UInt8] {
        let (answer, effects) = try tickets.arrived(request, receivedAtMs: receivedAtMs, nowMs: nowMs,
                                                    responses: &machine.responses, store: tx)
        carryOut(effects)
        return answer
    }

    /// What the ticket desk did: log it, remember to flush, and watch the silent nodes.
    func carryOut(_ effects: TicketDesk.Effects) {
        if effects.queuedMessages { ticketOutboxMayHaveWork = true }
        for opened in effects.unresponsive { openUnresponsive[opened.node] = opened.ticketID }
        for note in effects.notes {
            switch note {
            case .opened(let ticketID, let kind, let responsible, let code):
                logger.warning("ticket opened", metadata: ["ticket.id": "\(ticketID)", "ticket.kind": "\(kind.rawValue)",
                                                           "ticket.responsible": "\(responsible)", "error.code": "\(code)"])
            case .acknowledged(let ticketID, let kind):
                logger.warning("ticket acknowledged", metadata: ["ticket.id": "\(ticketID)", "ticket.kind": "\(kind.rawValue)"])
            case .closed(let ticketID, let kind, let responsible):
                logger.info("ticket closed", metadata: ["ticket.id": "\(ticketID)", "ticket.kind": "\(kind.rawValue)",
                                                        "ticket.responsible": "\(responsible)"])
            }
        }
    }

    /// Sends the queued ticket messages not sent in the last 3 s (each until it is answered).
    func flushTicketOutbox() {
        lastTicketFlushMs = nowMs
        guard ticketOutboxMayHaveWork, machine.isSignedIn || spec.parent == nil,
              let queued = try? ledger.read({ try $0.ticketOutbox() }) else { return }
        if queued.isEmpty { ticketOutboxMayHaveWork = false }
        for entry in queued where nowMs - (ticketsInFlight[entry.msgid]?.sentAtMs ?? .min / 2) >= 3_000 {
            guard let destination = DivisionCode(entry.destination),
                  let hop = topology.routingTable.nextHop(from: spec.id, to: destination),
                  let request = try? WireRequest(serializedBytes: entry.body), case .ticket(let input)? = request.input,
                  let event = TicketEvent(rawValue: input.event) else { continue }
            let peer: Peer
            switch hop {
            case .here: continue
            case .parent: peer = .parent
            case .child(let child): peer = .downstream(Array(child.value.utf8))
            }
            ticketsInFlight[entry.msgid] = (nowMs, event, input.ticketID)
            send(Outgoing(peer: peer, frames: [[], WireCodec.requestKind, entry.body], requestMsgid: entry.msgid))
        }
    }

    func ticketEventAnswered(_ response: WireResponse) {
        guard let sent = ticketsInFlight.removeValue(forKey: response.reqMsgid) else { return }
        guard response.infcode == 0, case .ticket? = response.output else { return }   // sent again later
        do {
            // Ticket bookkeeping is written even on a full disk: the disk_full ticket's own messages need it.
            try ledger.allowingChanges { try ledger.write { tx in
                try tx.removeTicketEvent(msgid: response.reqMsgid)
                try tickets.answered(sent.event, ticketID: sent.ticketID, response, nowMs: nowMs, store: tx)
            } }
        } catch {
            logger.error("ticket acknowledgement not recorded", metadata: ["error": "\(error)"])
        }
    }

    /// The silent node answers again: its ticket is closed (销号) and the registry told.
    func closeUnresponsive(node: String, ticketID: String) {
        openUnresponsive[node] = nil
        do {
            let effects = try ledger.allowingChanges {   // ticket bookkeeping: written even on a full disk
                try ledger.write { tx in
                    try tickets.close(ticketID, reason: "node \(node) answers again", nowMs: nowMs, store: tx)
                }
            }
            carryOut(effects)
        } catch {
            logger.error("ticket close not recorded", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Uploads

    /// Screens an upload batch at this tier.
    func screen(_ request: WireRequest, receivedAtMs: Int64, tx: LedgerTransaction) throws -> UploadScreen.Outcome {
        let screened = try uploads.screen(request, receivedAtMs: receivedAtMs, nowMs: nowMs, catalog: machine.catalog,
                                          responses: &machine.responses, tickets: &tickets, store: tx,
                                          recordsAsReceived: passThrough.uploadRecords(of: request.msgid))
        carryOut(screened.tickets)
        if screened.queuedForNational { outbox.recordsQueued() }
        if case .forward(_, let input, _, _) = screened.outcome { passThrough.encodedUpload(request.msgid, input: input) }
        return screened.outcome
    }

    /// Provincial tier: sends the national outbox's due batches.
    func flushOutbox() {
        lastOutboxFlushMs = nowMs
        // On a full disk the batches cannot be recorded as sent: they wait for space.
        guard machine.isSignedIn, spec.parent != nil, outbox.hasWork, diskFullSinceMs == nil else { return }
        do {
            let version = machine.catalog?.version ?? ""
            let now = nowMs
            for request in try ledger.write({ tx in try outbox.due(nowMs: now, catalogVersion: version, store: tx) }) {
                sendToNational(request)
            }
        } catch {
            logger.error("outbox flush failed", metadata: ["error": "\(error)"])
        }
    }

    /// One of the outbox's batches, once its assignment is durable: sealed and through the link's
    /// faults like any message to the parent (in memory when the parent runs in this process);
    /// sent again later if this fails.
    func sendToNational(_ batch: NationalOutbox.Batch) {
        if send(Outgoing(peer: .parent, frames: WireCodec.frames(requestBody: batch.body), requestMsgid: batch.msgid)) {
            outbox.sent(batch.msgid, nowMs: nowMs)
        } else {
            logger.warning("outbox batch not sent", metadata: ["upload.msgid": "\(batch.msgid)"])
        }
    }

    /// The national tier answered a batch: acknowledged, and (in the same transaction) the place
    /// it frees in flight taken by records waiting for one.
    func acknowledgeOutbox(_ response: WireResponse) {
        do {
            let version = machine.catalog?.version ?? ""
            let now = nowMs
            let (answer, next) = try ledger.write { tx in
                let answer = try outbox.answered(response, store: tx)
                return (answer, answer == .stored ? try outbox.due(nowMs: now, catalogVersion: version, store: tx) : [])
            }
            if case .refused(let code) = answer {
                logger.warning("national store refused a batch", metadata: ["upload.msgid": "\(response.reqMsgid)", "error.code": "\(code)"])
            }
            for request in next { sendToNational(request) }
        } catch {
            logger.error("outbox acknowledgement failed", metadata: ["error": "\(error)"])
        }
    }
}
