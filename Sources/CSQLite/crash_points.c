/* A crash in the middle of a commit, for the crash tests ("settlenet-crash"): the default VFS
   of a node process is the unix VFS with one change, a hook after each write to a write-ahead
   log. Armed (settlenet_crash_after_log_writes), the hook kills the process with SIGKILL right
   after the n-th write from then on: SQLite writes each frame's header and its page as two
   writes, so the log is left torn, part of a commit in it and its last frame not. Disarmed, the
   hook costs one atomic load per write. */

#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

static sqlite3_vfs crashVFS;
static sqlite3_vfs *unixVFS = NULL;
/* The unix VFS's methods for log files, and the same with the hook. */
static const sqlite3_io_methods *logMethods = NULL;
static sqlite3_io_methods hookedLogMethods;
static atomic_int logWritesUntilCrash = 0;

void settlenet_crash_after_log_writes(int writes) { atomic_store(&logWritesUntilCrash, writes); }

static int hookedWrite(sqlite3_file *file, const void *buffer, int amount, sqlite3_int64 offset) {
    int result = logMethods->xWrite(file, buffer, amount, offset);
    if (atomic_load_explicit(&logWritesUntilCrash, memory_order_relaxed) > 0 && atomic_fetch_sub(&logWritesUntilCrash, 1) == 1) {
        kill(getpid(), SIGKILL);
    }
    return result;
}

static int crashOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *outFlags) {
    (void)vfs;
    int result = unixVFS->xOpen(unixVFS, name, file, flags, outFlags);
    if (result != SQLITE_OK || !(flags & SQLITE_OPEN_WAL) || !file->pMethods) return result;
    if (!logMethods) {
        logMethods = file->pMethods;
        hookedLogMethods = *logMethods;
        hookedLogMethods.xWrite = hookedWrite;
    }
    if (file->pMethods == logMethods) file->pMethods = &hookedLogMethods;
    return result;
}

int settlenet_crash_vfs_register(void) {
    if (sqlite3_vfs_find("settlenet-crash")) return SQLITE_OK;
    unixVFS = sqlite3_vfs_find("unix");
    if (!unixVFS) return SQLITE_ERROR;
    crashVFS = *unixVFS;
    crashVFS.zName = "settlenet-crash";
    crashVFS.pNext = NULL;
    crashVFS.xOpen = crashOpen;
    return sqlite3_vfs_register(&crashVFS, 1);
}
