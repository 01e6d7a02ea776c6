import SettlementCore
import SettlementModel
import Testing

/// The per-message decisions of link faults: seeded, so a seed replays them message by message.
@Suite struct LinkFaultTests {
    let flaky = LinkFault(from: "370200", to: "370000", startMs: 1_000, endMs: 11_000, delayMs: 50, jitterMs: 20, loss: 0.05,
                          duplicate: 0.01, corrupt: 0.02, seed: 42)

    func decisions(_ fault: LinkFault, count: Int, atMs: Int64 = 5_000) -> [LinkDecision] {
        var table = LinkFaultTable(faults: [fault], sender: fault.from)
        return (0..<count).map { _ in table.decide(to: fault.to, nowMs: atMs) }
    }

    @Test func theSameSeedReplaysTheSameDecisionsAndAnotherSeedDoesNot() {
        #expect(decisions(flaky, count: 2_000) == decisions(flaky, count: 2_000))
        var other = flaky
        other.seed = 43
        #expect(decisions(flaky, count: 2_000) != decisions(other, count: 2_000))
    }

    @Test func decisionsFollowTheConfiguredRates() {
        let made = decisions(flaky, count: 20_000)
        let lost = Double(made.filter(\.dropped).count) / 20_000
        let corrupted = Double(made.filter { $0.corruptAt != nil }.count) / 20_000
        #expect(lost > 0.04 && lost < 0.06, "loss \(lost)")
        #expect(corrupted > 0.015 && corrupted < 0.025, "corrupt \(corrupted)")
        let delaysInRange = made.allSatisfy { (30...70).contains($0.delayMs) }
        #expect(delaysInRange)
        #expect(Set(made.map(\.delayMs)).count > 30, "jitter spreads the delay")
    }

    @Test func aFaultActsOnlyOnItsDirectionAndOnlyInItsWindow() {
        var table = LinkFaultTable(faults: [flaky], sender: "370200")
        #expect(table.decide(to: "370000", nowMs: 999) == .untouched)
        #expect(table.decide(to: "370000", nowMs: 11_000) == .untouched, "expired by itself at its end")
        #expect(table.decide(to: "370211", nowMs: 5_000) == .untouched, "another link")
        #expect(table.decide(to: "370000", nowMs: 5_000) != .untouched)
        // The other end of the link does not apply this direction's fault.
        #expect(LinkFaultTable(faults: [flaky], sender: "370000").isEmpty)
    }

    /// Nodes reload the fault file whenever any fault begins or ends; the faults still in force
    /// go on numbering their messages where they were, or a reload would replay decisions.
    @Test func reloadingTheFaultsKeepsTheNumberingOfThoseThatStay() {
        let partition = LinkFault(from: "370200", to: "370202", startMs: 1_000, endMs: 3_000, loss: 1, seed: 99)
        var table = LinkFaultTable(faults: [flaky], sender: "370200")
        let before = (0..<10).compactMap { _ in table.next(to: "370000", nowMs: 5_000) }
        table.replace(with: [flaky, partition])
        let after = (0..<10).compactMap { _ in table.next(to: "370000", nowMs: 5_000) }
        #expect(before.map(\.number) == Array(1...10) && after.map(\.number) == Array(11...20))
        #expect((before + after).map(\.decision) == decisions(flaky, count: 20))
        #expect(after.allSatisfy { $0.decision == LinkFaultTable.decision(flaky, number: $0.number) })
        // A fault that ended and comes back under the same seed starts over.
        table.replace(with: [])
        table.replace(with: [flaky])
        #expect(table.next(to: "370000", nowMs: 5_000)?.number == 1)
    }

    @Test func aPartitionDropsEverything() {
        let cut = LinkFault(from: "410000", to: "000000", startMs: 0, endMs: 10, loss: 1, seed: 7)
        let allDropped = decisions(cut, count: 500, atMs: 5).allSatisfy(\.dropped)
        #expect(allDropped)
    }

    @Test func aSealedMessageWithAnyByteFlippedIsRejectedAndHospitalsNeedNoSeal() {
        var request = WireRequest()
        request.infno = "2207"
        request.msgid = "H37021100001202611230000000001"
        let plain = WireCodec.frames(request)
        let sealed = WireCodec.sealed(plain)
        #expect(sealed.count == 4 && WireCodec.unsealed(sealed[...]).map(Array.init) == plain)
        #expect(WireCodec.unsealed(plain[...]).map(Array.init) == plain)
        for frame in 1...3 {
            for position in 0..<sealed[frame].count {
                var damaged = sealed
                damaged[frame][position] ^= 0x01
                #expect(WireCodec.unsealed(damaged[...]) == nil, "frame \(frame) byte \(position) flipped unnoticed")
            }
        }
    }
}
