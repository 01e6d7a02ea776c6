/* SQLite itself (sqlite3.c beside this folder). Nothing is declared here: GRDB and Persistence
   call it through <sqlite3.h>, and their calls bind to this copy when the executable links. */

struct sqlite3;
int sqlite3_db_config(struct sqlite3 *, int op, ...);

/* The connection will not copy its write-ahead log back into the database when it closes
   (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1006): a simulated crash must leave the log as it was.
   In C because Swift cannot call a variadic C function. */
static inline int settlenet_no_checkpoint_on_close(struct sqlite3 *db) {
    return sqlite3_db_config(db, 1006, 1, (int *)0);
}

/* The simulated ledgers' VFS, "settlenet-sim": database files as the unix VFS keeps them,
   write-ahead logs in memory (simulated_wal.c). Registered once; SQLITE_OK when it is. */
int settlenet_simulated_vfs_register(void);
/* Cuts the in-memory log at `path` (the database's full path and "-wal") to `size` bytes, as
   a crash keeps only what was synced. Returns its size before, or -1 if there is none. */
long long settlenet_simulated_log_truncate(const char *path, long long size);

/* The node processes' VFS, "settlenet-crash" (crash_points.c): the unix VFS, with a hook after
   each write to a write-ahead log. Registered as the default; SQLITE_OK when it is. */
int settlenet_crash_vfs_register(void);
/* Kills this process with SIGKILL right after the `writes`-th write to a log from now (0:
   disarmed): a crash in the middle of a commit. */
void settlenet_crash_after_log_writes(int writes);
