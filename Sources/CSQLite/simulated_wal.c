/* A VFS for a simulation's ledgers ("settlenet-sim"): the database files are the unix VFS's
   own, but each write-ahead log lives in memory. A simulated ledger's disk is simulated, so a
   commit need not cost two write system calls per page: at the national scale those were a
   fifth of a simulation's time. A log outlives the connection that wrote it (a simulated
   crash closes the connection and keeps the log, cut to what its syncs covered) until SQLite
   deletes it after copying it back into the database. One thread at a time uses it (the
   simulation's), but a mutex keeps the registry safe from any other. */

#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct MemoryLog {
    char *path;
    unsigned char *bytes;
    sqlite3_int64 size;
    sqlite3_int64 capacity;
    struct MemoryLog *next;
} MemoryLog;

typedef struct MemoryLogFile {
    sqlite3_file base;
    MemoryLog *log;
} MemoryLogFile;

static pthread_mutex_t registryLock = PTHREAD_MUTEX_INITIALIZER;
static MemoryLog *registry = NULL;
static sqlite3_vfs simulatedVFS;
static sqlite3_vfs *unixVFS = NULL;

/* Under registryLock. */
static MemoryLog *findLog(const char *path, MemoryLog ***link) {
    MemoryLog **at = &registry;
    for (; *at; at = &(*at)->next) {
        if (strcmp((*at)->path, path) == 0) break;
    }
    if (link) *link = at;
    return *at;
}

static int logClose(sqlite3_file *file) {
    (void)file;   /* the log stays until deleted */
    return SQLITE_OK;
}

static int logRead(sqlite3_file *file, void *buffer, int amount, sqlite3_int64 offset) {
    MemoryLog *log = ((MemoryLogFile *)file)->log;
    sqlite3_int64 available = log->size - offset;
    if (available >= amount) {
        memcpy(buffer, log->bytes + offset, (size_t)amount);
        return SQLITE_OK;
    }
    if (available < 0) available = 0;
    if (available > 0) memcpy(buffer, log->bytes + offset, (size_t)available);
    memset((unsigned char *)buffer + available, 0, (size_t)(amount - available));
    return SQLITE_IOERR_SHORT_READ;
}

static int reserve(MemoryLog *log, sqlite3_int64 size) {
    if (size <= log->capacity) return SQLITE_OK;
    sqlite3_int64 capacity = log->capacity ? log->capacity : 65536;
    while (capacity < size) capacity *= 2;
    unsigned char *grown = realloc(log->bytes, (size_t)capacity);
    if (!grown) return SQLITE_IOERR_NOMEM;
    log->bytes = grown;
    log->capacity = capacity;
    return SQLITE_OK;
}

static int logWrite(sqlite3_file *file, const void *buffer, int amount, sqlite3_int64 offset) {
    MemoryLog *log = ((MemoryLogFile *)file)->log;
    sqlite3_int64 end = offset + amount;
    if (reserve(log, end) != SQLITE_OK) return SQLITE_IOERR_NOMEM;
    if (offset > log->size) memset(log->bytes + log->size, 0, (size_t)(offset - log->size));
    memcpy(log->bytes + offset, buffer, (size_t)amount);
    if (end > log->size) log->size = end;
    return SQLITE_OK;
}

/* A log cut short gives its memory back: SQLite cuts it after each checkpoint
   (journal_size_limit), and thousands of idle logs must not keep their longest size. */
static void shrink(MemoryLog *log, sqlite3_int64 size) {
    if (size < log->size) log->size = size;
    if (log->size == 0) {
        free(log->bytes);
        log->bytes = NULL;
        log->capacity = 0;
    } else if (log->size * 4 < log->capacity && log->capacity > 65536) {
        sqlite3_int64 capacity = 65536;
        while (capacity < log->size) capacity *= 2;
        unsigned char *smaller = realloc(log->bytes, (size_t)capacity);
        if (smaller) {
            log->bytes = smaller;
            log->capacity = capacity;
        }
    }
}

static int logTruncate(sqlite3_file *file, sqlite3_int64 size) {
    shrink(((MemoryLogFile *)file)->log, size);
    return SQLITE_OK;
}

static int logSync(sqlite3_file *file, int flags) { (void)file; (void)flags; return SQLITE_OK; }

static int logFileSize(sqlite3_file *file, sqlite3_int64 *size) {
    *size = ((MemoryLogFile *)file)->log->size;
    return SQLITE_OK;
}

static int logLock(sqlite3_file *file, int level) { (void)file; (void)level; return SQLITE_OK; }
static int logCheckReservedLock(sqlite3_file *file, int *held) { (void)file; *held = 0; return SQLITE_OK; }
static int logFileControl(sqlite3_file *file, int op, void *argument) { (void)file; (void)op; (void)argument; return SQLITE_NOTFOUND; }
static int logSectorSize(sqlite3_file *file) { (void)file; return 4096; }
static int logDeviceCharacteristics(sqlite3_file *file) {
    (void)file;
    return SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL | SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static const sqlite3_io_methods memoryLogMethods = {
    1, logClose, logRead, logWrite, logTruncate, logSync, logFileSize, logLock, logLock,
    logCheckReservedLock, logFileControl, logSectorSize, logDeviceCharacteristics,
    NULL, NULL, NULL, NULL, NULL, NULL
};

static int simulatedOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *outFlags) {
    (void)vfs;
    if (!(flags & SQLITE_OPEN_WAL) || !name) return unixVFS->xOpen(unixVFS, name, file, flags, outFlags);
    pthread_mutex_lock(&registryLock);
    MemoryLog *log = findLog(name, NULL);
    if (!log) {
        log = calloc(1, sizeof(MemoryLog));
        if (log) log->path = strdup(name);
        if (!log || !log->path) {
            free(log);
            pthread_mutex_unlock(&registryLock);
            return SQLITE_CANTOPEN;
        }
        log->next = registry;
        registry = log;
    }
    pthread_mutex_unlock(&registryLock);
    MemoryLogFile *opened = (MemoryLogFile *)file;
    opened->log = log;
    opened->base.pMethods = &memoryLogMethods;
    if (outFlags) *outFlags = flags;
    return SQLITE_OK;
}

static int simulatedDelete(sqlite3_vfs *vfs, const char *name, int syncDirectory) {
    (void)vfs;
    MemoryLog **link;
    pthread_mutex_lock(&registryLock);
    MemoryLog *log = findLog(name, &link);
    if (log) {
        *link = log->next;
        free(log->bytes);
        free(log->path);
        free(log);
    }
    pthread_mutex_unlock(&registryLock);
    return log ? SQLITE_OK : unixVFS->xDelete(unixVFS, name, syncDirectory);
}

static int simulatedAccess(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs;
    pthread_mutex_lock(&registryLock);
    MemoryLog *log = findLog(name, NULL);
    /* As the unix VFS: an empty log counts as none. */
    if (log) *result = flags == SQLITE_ACCESS_EXISTS ? log->size > 0 : 1;
    pthread_mutex_unlock(&registryLock);
    return log ? SQLITE_OK : unixVFS->xAccess(unixVFS, name, flags, result);
}

static void registerOnce(void) {
    unixVFS = sqlite3_vfs_find("unix");
    if (!unixVFS) return;
    simulatedVFS = *unixVFS;
    simulatedVFS.pNext = NULL;
    simulatedVFS.zName = "settlenet-sim";
    if ((size_t)simulatedVFS.szOsFile < sizeof(MemoryLogFile)) simulatedVFS.szOsFile = (int)sizeof(MemoryLogFile);
    simulatedVFS.xOpen = simulatedOpen;
    simulatedVFS.xDelete = simulatedDelete;
    simulatedVFS.xAccess = simulatedAccess;
    sqlite3_vfs_register(&simulatedVFS, 0);
}

int settlenet_simulated_vfs_register(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, registerOnce);
    return sqlite3_vfs_find("settlenet-sim") ? SQLITE_OK : SQLITE_ERROR;
}

long long settlenet_simulated_log_truncate(const char *path, long long size) {
    pthread_mutex_lock(&registryLock);
    MemoryLog *log = findLog(path, NULL);
    long long before = log ? log->size : -1;
    if (log) shrink(log, size);
    pthread_mutex_unlock(&registryLock);
    return before;
}
