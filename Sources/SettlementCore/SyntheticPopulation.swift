import SettlementModel

/// SplitMix64: a small, fast, seedable generator; the same seed gives the same sequence
/// on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One synthetic insured person as first created (before any settlement).
public struct SyntheticPerson: Equatable, Sendable {
    public let psnNo: String
    public let name: String
    public let insutype: String
    public let initialBalanceFen: Int64
    public let filedOffsite: Bool

    public var account: PersonAccount {
        PersonAccount(psnNo: psnNo, insutype: insutype, balanceFen: initialBalanceFen, filedOffsite: filedOffsite)
    }
}

/// The deterministic insured population of one county: person `i` is the same on every node,
/// every run and every machine, so clients can name real persons without asking the network.
///
/// Person numbers are 20 characters: the county's division code, then a 14-digit serial.
public struct SyntheticPopulation: Sendable {
    public let county: DivisionCode
    public let size: Int
    /// Share of persons filed for off-site care, in basis points.
    public let filedOffsiteBp: Int

    public init(county: DivisionCode, size: Int, filedOffsiteBp: Int = 9_500) {
        self.county = county
        self.size = size
        self.filedOffsiteBp = filedOffsiteBp
    }

    public func psnNo(_ index: Int) -> String {
        ZeroPadded.string(prefix: county.value, [(0, index, 14)])
    }

    /// The index of a person number of this county, or nil when it is not one.
    public func index(of psnNo: String) -> Int? {
        guard psnNo.utf8.count == 20, psnNo.hasPrefix(county.value), let index = Int(psnNo.dropFirst(6)),
              index >= 0, index < size else { return nil }
        return index
    }

    public func person(_ index: Int) -> SyntheticPerson {
        var random = SplitMix64(seed: UInt64(county.value)! &* 1_000_003 &+ UInt64(index))
        let roll = Int(random.next() % 100)
        let insutype = roll < 55 ? "310" : (roll < 97 ? "390" : "340")
        // Employees and retired cadres carry a personal account; residents mostly do not.
        let balance: Int64 = insutype == "390" ? Int64(random.next() % 20_000) : Int64(random.next() % 800_000)
        let filed = Int(random.next() % 10_000) < filedOffsiteBp
        let surnames = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙"]
        let given = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛"]
        let name = surnames[Int(random.next() % UInt64(surnames.count))]
            + given[Int(random.next() % UInt64(given.count))]
            + given[Int(random.next() % UInt64(given.count))]
        return SyntheticPerson(psnNo: psnNo(index), name: name, insutype: insutype,
                               initialBalanceFen: balance, filedOffsite: filed)
    }

    /// The first person at or after `start` whose off-site filing status is `filed`.
    public func firstPerson(filedOffsite filed: Bool, from start: Int = 0) -> SyntheticPerson? {
        var index = start
        while index < size {
            let candidate = person(index)
            if candidate.filedOffsite == filed { return candidate }
            index += 1
        }
        return nil
    }
}
