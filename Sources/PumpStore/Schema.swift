import GRDB

extension PumpStore {
    /// The schema, one migration per change; a released migration is never edited.
    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: pumps, events, audit, uncertain requests") { db in
            try db.execute(sql: """
                CREATE TABLE pump (
                    id TEXT PRIMARY KEY NOT NULL,
                    port TEXT NOT NULL,
                    serialNumber TEXT,
                    model TEXT
                );

                -- Each pump's copy of its event log. timeMs holds the UInt64's bit pattern.
                CREATE TABLE event (
                    pumpID TEXT NOT NULL REFERENCES pump(id),
                    sequence INTEGER NOT NULL CHECK (sequence BETWEEN 0 AND 4294967295),
                    timeMs INTEGER NOT NULL,
                    kind INTEGER NOT NULL,
                    code INTEGER NOT NULL,
                    requestID INTEGER NOT NULL,
                    value1 INTEGER NOT NULL,
                    value2 INTEGER NOT NULL,
                    PRIMARY KEY (pumpID, sequence)
                ) WITHOUT ROWID;

                -- Append-only: an intent row (intentID NULL, outcome 'pending') before a changing
                -- command is sent, then outcome rows pointing at it. timeMs holds the UInt64's bit pattern.
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    timeMs INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    role TEXT NOT NULL,
                    pumpID TEXT NOT NULL,
                    action TEXT NOT NULL,
                    parameters TEXT NOT NULL,
                    outcome TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    requestID INTEGER,
                    intentID INTEGER REFERENCES audit(id)
                );
                CREATE INDEX audit_by_pump ON audit(pumpID, id);
                CREATE INDEX audit_by_intent ON audit(intentID);
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

                -- Changing requests whose outcome is unknown; new doses wait until resolved.
                CREATE TABLE uncertain (
                    pumpID TEXT NOT NULL REFERENCES pump(id),
                    requestID INTEGER NOT NULL,
                    action TEXT NOT NULL,
                    intentID INTEGER REFERENCES audit(id),
                    markedAtMs INTEGER NOT NULL,
                    resolvedAtMs INTEGER,
                    executed INTEGER,
                    PRIMARY KEY (pumpID, requestID)
                );
                """)
        }
        migrator.registerMigration("v2: changing requests sent for an intent") { db in
            try db.execute(sql: """
                -- Written just before each changing request goes out, so an intent left without
                -- an outcome by a crash tells whether anything was sent, and under which id.
                CREATE TABLE sent (
                    intentID INTEGER NOT NULL REFERENCES audit(id),
                    pumpID TEXT NOT NULL REFERENCES pump(id),
                    requestID INTEGER NOT NULL,
                    messageType TEXT NOT NULL,
                    timeMs INTEGER NOT NULL,
                    PRIMARY KEY (intentID, requestID)
                );
                CREATE TRIGGER sent_no_update BEFORE UPDATE ON sent
                    BEGIN SELECT RAISE(ABORT, 'sent requests are append-only'); END;
                CREATE TRIGGER sent_no_delete BEFORE DELETE ON sent
                    BEGIN SELECT RAISE(ABORT, 'sent requests are append-only'); END;
                """)
        }
        migrator.registerMigration("v3: the audit log as a hash chain") { db in
            // Existing rows are chained once, here: the only update the audit log ever gets.
            try db.execute(sql: """
                ALTER TABLE audit ADD COLUMN hash TEXT;
                DROP TRIGGER audit_no_update;
                """)
            try AuditChain.chainExistingRows(db)
            try db.execute(sql: """
                CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                CREATE TRIGGER audit_hash_required BEFORE INSERT ON audit WHEN NEW.hash IS NULL
                    BEGIN SELECT RAISE(ABORT, 'an audit row needs its chain hash'); END;
                """)
        }
        return migrator
    }()
}
