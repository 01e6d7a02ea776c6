import Glibc

/// Room kept on the disk under a node's ledger, for the day it fills up.
///
/// A node whose ledger meets a full disk (SQLITE_FULL) must still write a little: the ticket
/// that says so, and its messages to the registry. So at start it sets aside `bytes` in a file
/// of its own (`space.reserve` beside the ledger), allocated, not sparse. When the disk fills it
/// deletes that file, writes only what it must into the room freed, and refuses everything else
/// (`Ledger.refusesChanges`). Once the disk has `bytes` plus `headroomBytes` free again, it sets
/// the reserve aside anew and takes new work. (etcd's NOSPACE alarm and the "ballast file" of
/// operations practice work the same way.)
struct DiskReserve {
    let directory: String
    let path: String
    /// What the node must write with the disk full fits in a few pages of the log: 128 KiB is
    /// many times that, and a national network packed on one machine sets aside 400 MB for it.
    var bytes = 128 * 1_024
    /// Free space, beyond the reserve, before the node takes new work again: less would fill
    /// again at once.
    var headroomBytes = 1_024 * 1_024

    init(directory: String) {
        self.directory = directory
        path = "\(directory)/space.reserve"
    }

    /// Sets the reserve aside (again): true once the file holds `bytes` on the disk.
    func make() -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        // Allocated, not merely sized: a sparse file frees nothing when it is deleted.
        if posix_fallocate(descriptor, 0, off_t(bytes)) == 0 { return true }
        _ = ftruncate(descriptor, 0)   // half a reserve is none: give back what was taken
        return false
    }

    /// Gives the reserve back to the disk, for the ledger's last writes.
    func free() { unlink(path) }

    /// Bytes an unprivileged process may still write on the disk; nil if it cannot be asked.
    func freeBytes() -> Int64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Enough space has come back to set the reserve aside and work on.
    var hasRoomToResume: Bool { (freeBytes() ?? 0) >= Int64(bytes + headroomBytes) }
}
