// Package replica streams the database to a continuous copy with Litestream (used as a
// library), reports how far behind that copy is, and restores a database from it.
//
// Litestream reads the WAL's frames as SQLite writes them and ships them, every
// sync interval, as LTX files to a folder (file:///...) or an S3-compatible bucket
// (s3://...). It keeps a read transaction open on the database between its syncs, so no
// checkpoint can restart the WAL over frames it has not read (store/checkpoint.go says
// why the store's own PASSIVE checkpoints stay safe), and it checkpoints and restarts
// the WAL itself once it has shipped everything. One Litestream database streams to one
// replica (Litestream 0.5 dropped several per database: two instances on one file
// would each keep the other's read transaction from ever letting the WAL restart), so
// config allows one replica.
//
// The sync loop is ours, not Litestream's monitor, so that the lag is a fact and not
// a guess: each round notes the time, has Litestream turn the WAL into LTX and ship it,
// and when both succeed, everything committed before that time is on the replica. Lag
// is the time since the last such moment; a round that fails keeps its error for
// /healthz, and payments go on.
package replica
