import Logging
import Persistence
import SettlementCore
import SettlementModel

/// A full disk under the ledger. The node stays up and:
/// - refuses what would change its ledger, definitely (SN-E3008, detail naming the node);
/// - answers what its ledger already holds (a settlement asked again, a final answer);
/// - opens a disk_full ticket, written into the room its reserve gave back (`DiskReserve`);
/// - checks the disk each second, and takes new work again by itself once space returns,
///   closing the ticket.
/// Nothing refused was recorded anywhere on its way: the senders hear a definite refusal, and
/// what passed through unrecorded is resolved by its origin like any other unknown outcome.
extension NodeShell {
    /// The ledger met a full disk: from now on it takes no change but the ticket's.
    func diskRanOut() {
        guard diskFullSinceMs == nil else { return }
        diskFullSinceMs = nowMs
        lastDiskFullReportMs = nowMs
        ledger.refusesChanges = true
        diskReserve?.free()
        logger.critical("disk full: refusing new work (SN-E3008) until space returns; answering what the ledger holds",
                        metadata: ["directory": "\(layout.nodeDirectory(spec.id))",
                                   "free_bytes": "\(diskReserve?.freeBytes().map(String.init) ?? "-")"])
        openDiskFullTicket()
        status.soon()
    }

    /// A round refused for the full disk: counted, and logged once every 10 s, not per message.
    func refusedForFullDisk(_ failure: any Error) {
        refusedForDiskFull += 1
        guard diskFullSinceMs != nil, nowMs - lastDiskFullReportMs >= 10_000 else { return }   // the first: `diskRanOut` says it
        lastDiskFullReportMs = nowMs
        logger.warning("disk full: work refused", metadata: ["refused": "\(refusedForDiskFull)", "error": "\(failure)"])
    }

    /// Each second while the disk is full: the ticket, if it could not be written yet, and
    /// whether space has returned.
    func checkFullDisk() {
        guard let since = diskFullSinceMs, nowMs - lastDiskCheckMs >= 1_000 else { return }
        lastDiskCheckMs = nowMs
        if !diskFullTicketOpened { openDiskFullTicket() }
        guard let reserve = diskReserve, reserve.hasRoomToResume, reserve.make() else { return }
        diskFullSinceMs = nil
        ledger.refusesChanges = false
        logger.notice("disk has room again: taking new work",
                      metadata: ["full_for_ms": "\(nowMs - since)", "refused": "\(refusedForDiskFull)",
                                 "free_bytes": "\(reserve.freeBytes().map(String.init) ?? "-")"])
        refusedForDiskFull = 0
        closeDiskFullTicket(afterMs: nowMs - since)
        status.soon()
    }

    private func openDiskFullTicket() {
        do {
            let effects = try ledger.allowingChanges {
                try ledger.write { tx in
                    try tickets.open(.diskFull, code: ErrorCode.diskFull.rawValue, subject: spec.id.value, responsible: spec.id.value,
                                     reason: "the disk under the ledger of node \(spec.id) is full: new work refused until space returns",
                                     nowMs: nowMs, store: tx)
                }
            }
            carryOut(effects)
            diskFullTicketOpened = true
        } catch {
            logger.error("disk_full ticket not recorded: tried again each second", metadata: ["error": "\(error)"])
        }
    }

    private func closeDiskFullTicket(afterMs: Int64) {
        defer { diskFullTicketOpened = false }
        do {
            let open = try ledger.read { try $0.tickets() }.filter {
                $0.kind == .diskFull && $0.openedBy == spec.id.value && $0.state != .closed
            }
            for ticket in open {
                carryOut(try ledger.write { tx in
                    try tickets.close(ticket.ticketID, reason: "space returned after \(afterMs / 1_000) s", nowMs: nowMs, store: tx)
                })
            }
        } catch {
            logger.error("disk_full ticket close not recorded", metadata: ["error": "\(error)"])
        }
    }
}
