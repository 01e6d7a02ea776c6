/* SQLite itself (sqlite3.c beside this folder). Nothing is declared here: GRDB and Persistence
   call it through <sqlite3.h>, and their calls bind to this copy when the executable links. */
