// Package replica streams the database to continuous copies with Litestream (used as a
// library), reports how far behind each copy is, and restores a database from any one.
//
// Litestream reads the WAL's frames as SQLite writes them and turns them, every sync
// interval, into LTX files, which it ships to a replica: a folder (file:///...) or an
// S3-compatible bucket (s3://...), where it also compacts them into coarser levels,
// writes daily snapshots and deletes what is older than its retention. It keeps a read
// transaction open on the database between its syncs, so no checkpoint can restart the
// WAL over frames it has not read (store/checkpoint.go says why the store's own
// PASSIVE checkpoints stay safe), and it checkpoints and restarts the WAL itself once it
// has read everything.
//
// # Several replicas
//
// Litestream 0.5 ships one database to one replica, and two Litestream readers on one
// file would each keep the other's read transaction from ever letting the WAL restart.
// So there is one Litestream reader, and the replica it ships to is the hub (hub.go): a
// replica client of ours that puts each file in the stage, a folder beside the database
// (.NAME-replicas, stage.go), and acknowledges it at once. Every configured replica has
// its own loop (ship.go) that makes it hold what the hub holds: it sends the files it
// lacks, from the stage, then deletes the files Litestream has let go. The stage lets go
// of a file's content once every replica holds it, and keeps its name as an empty stub.
//
// Why this and not the alternatives:
//
//   - Litestream never waits on a replica, so one that is down, slow or unwritable can
//     neither delay the others nor stop the reading of the WAL; it is a loop that fails
//     and retries on its own.
//   - Catching up is one mechanism for every case (a replica down for a while, a
//     restart, a replica added to the list): compare what it holds with what the hub
//     holds and send the difference. There is no queue to persist or replay. A file
//     Litestream compacted away while a replica was down is simply not in the hub any
//     more; the compacted file that replaced it is.
//   - The files a replica lacks are sent in the order of the transaction each starts
//     at, a snapshot first: each one extends or lies within what it already holds, so a
//     replica restores without a gap at every step of catching up, as Litestream's own
//     restore requires.
//   - The stage keeps content only while some replica lacks it, so a healthy switch
//     keeps a few seconds of changes beside the database, not another copy of it. A
//     replica that is down makes the stage grow, up to what that replica would hold
//     (payswitch_replica_staged_bytes shows it); when the stage has let a file go, a
//     replica that lacks it anyway (a new one, or one emptied by hand) receives it from
//     another replica that holds it.
//   - The alternative of making the first replica Litestream's and copying the others
//     from it would tie every replica to the first one: while it is down, Litestream
//     cannot even list it at start, and nothing would be shipped anywhere.
//
// The stage persists what the replicas are to hold, so that a restart resumes at once
// even when a replica cannot be reached. Without a stage (the first start, the first
// after an upgrade from a single replica, a restore onto a new disk), it is rebuilt
// from the most current replica that can be listed (rebuild.go).
//
// # Lag
//
// The loop that reads the WAL is ours, not Litestream's monitor, so that the lag is a
// fact and not a guess: each round notes the time, has Litestream turn the WAL into LTX
// files in the stage, and when both succeed, marks that everything committed before
// that time is in the hub. A replica's round brings it to the hub's state as the round
// began; when it succeeds, the replica holds every commit made before the latest mark
// of that state. Its lag is the time since that mark; a round that fails keeps its
// error for /healthz, and payments go on.
package replica
