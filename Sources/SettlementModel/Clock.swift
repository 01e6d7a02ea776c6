/// Wall-clock instants as milliseconds since the Unix epoch, formatted in China Standard Time
/// (UTC+8, no daylight saving) the way the interface writes them. Pure: the caller supplies
/// the instant, so tests and seeded runs are reproducible.
public struct CivilTime: Equatable, Sendable {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, millisecond: Int

    public init(unixMs: Int64) {
        let local = unixMs + 8 * 3_600_000
        let msOfDay = Int(((local % 86_400_000) + 86_400_000) % 86_400_000)
        let days = Int((local - Int64(msOfDay)) / 86_400_000)
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        day = doy - (153 * mp + 2) / 5 + 1
        month = mp < 10 ? mp + 3 : mp - 9
        year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        hour = msOfDay / 3_600_000
        minute = msOfDay / 60_000 % 60
        second = msOfDay / 1000 % 60
        millisecond = msOfDay % 1000
    }

    /// yyyyMMddHHmmss
    public var compact: String { digits(prefix: "", tail: 0, tailWidth: 0) }
    /// yyyyMMddHHmmssSSS (refmsg_time, respond_time)
    public var compactMillis: String { digits(prefix: "", tail: millisecond, tailWidth: 3) }
    /// yyyy-MM-dd HH:mm:ss (inf_time, setl_time)
    public var readable: String {
        ZeroPadded.string([(0, year, 4), (UInt8(ascii: "-"), month, 2), (UInt8(ascii: "-"), day, 2), (UInt8(ascii: " "), hour, 2),
                           (UInt8(ascii: ":"), minute, 2), (UInt8(ascii: ":"), second, 2)])
    }

    /// `prefix` + yyyyMMddHHmmss + `serial` in `width` digits (msgids), in one string.
    func compact(prefix: String, serial: Int, width: Int) -> String {
        digits(prefix: prefix, tail: serial, tailWidth: width)
    }

    /// `prefix` + yyyyMMddHHmmss + `tail` in `tailWidth` digits, written straight into the
    /// string: every answer carries three such strings, and building them from a list of fields
    /// cost two arrays each. A field out of its width goes the general way (`ZeroPadded`).
    private func digits(prefix: String, tail: Int, tailWidth: Int) -> String {
        guard (0...9999).contains(year), tail >= 0, tailWidth <= 18, tail < ZeroPadded.power(of: tailWidth) else {
            var fields = dateAndTime
            if tailWidth > 0 { fields.append((separator: 0, value: tail, width: tailWidth)) }
            return ZeroPadded.string(prefix: prefix, fields)
        }
        return ZeroPadded.string(prefix: prefix, adding: 14 + tailWidth) { writer in
            writer.digits(year, width: 4)
            writer.digits(month, width: 2)
            writer.digits(day, width: 2)
            writer.digits(hour, width: 2)
            writer.digits(minute, width: 2)
            writer.digits(second, width: 2)
            if tailWidth > 0 { writer.digits(tail, width: tailWidth) }
        }
    }

    /// yyyy MM dd HH mm ss, no separators.
    private var dateAndTime: [(separator: UInt8, value: Int, width: Int)] {
        [(0, year, 4), (0, month, 2), (0, day, 2), (0, hour, 2), (0, minute, 2), (0, second, 2)]
    }
}

/// Message ids in the interface's formats.
public enum MessageID {
    /// A request msgid: institution code (12) + yyyyMMddHHmmss (14) + sequence (4) = 30 chars.
    public static func request(institution: String, unixMs: Int64, sequence: Int) -> String {
        CivilTime(unixMs: unixMs).compact(prefix: institution, serial: sequence % 10_000, width: 4)
    }

    /// A response inf_refmsgid: receiver's division (6) + yyyyMMddHHmmss (14) + serial (10).
    public static func response(division: String, unixMs: Int64, serial: UInt64) -> String {
        CivilTime(unixMs: unixMs).compact(prefix: division, serial: Int(serial % 10_000_000_000), width: 10)
    }
}
