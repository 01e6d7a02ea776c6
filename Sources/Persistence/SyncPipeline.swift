/// Which of a ledger's committed rounds its syncs have made durable (pipelined group commit).
///
/// A round commits at once and waits for a sync of the log. One sync runs at a time; it covers
/// the rounds committed before it began, never one committed while it runs (the sync may have
/// flushed the log before that commit wrote it): those wait for the next sync, which then covers
/// all of them at once. Rounds leave in the order they committed.
public struct SyncPipeline<Round> {
    private var waiting: [(commit: Int64, round: Round)] = []
    private var commits: Int64 = 0
    /// The last commit the running sync covers; nil while none runs.
    public private(set) var running: Int64?

    public init() {}

    /// Nothing waits and no sync runs.
    public var isIdle: Bool { waiting.isEmpty && running == nil }
    /// Rounds committed and not yet durable.
    public var rounds: Int { waiting.count }

    /// A round committed: it waits for a sync begun after now. Returns its commit's number.
    @discardableResult
    public mutating func committed(_ round: Round) -> Int64 {
        commits += 1
        waiting.append((commits, round))
        return commits
    }

    /// The sync to begin now, as the last commit it covers: every commit so far. Nil while a
    /// sync runs (the next begins when it ends) or when nothing waits.
    public mutating func nextSync() -> Int64? {
        guard running == nil, let last = waiting.last else { return nil }
        running = last.commit
        return last.commit
    }

    /// The running sync has returned: the rounds it made durable, oldest first.
    public mutating func synced() -> [Round] {
        guard let covering = running else { return [] }
        running = nil
        let durable = waiting.prefix { $0.commit <= covering }.map(\.round)
        waiting.removeFirst(durable.count)
        return durable
    }
}
