/// The simulation's agenda: events by virtual time, and among events of the same instant, in
/// the order they were scheduled. That order is what makes a run replay exactly.
struct EventQueue<Event> {
    private struct Entry {
        let atUs: Int64
        let order: UInt64
        let event: Event
        func precedes(_ other: Entry) -> Bool { atUs != other.atUs ? atUs < other.atUs : order < other.order }
    }

    private var heap: [Entry] = []
    private var scheduled: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ event: Event, atUs: Int64) {
        heap.append(Entry(atUs: atUs, order: scheduled, event: event))
        scheduled += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The earliest event, and when it is due.
    mutating func next() -> (atUs: Int64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < heap.count && heap[left].precedes(heap[smallest]) { smallest = left }
                if right < heap.count && heap[right].precedes(heap[smallest]) { smallest = right }
                guard smallest != parent else { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (first.atUs, first.event)
    }
}
