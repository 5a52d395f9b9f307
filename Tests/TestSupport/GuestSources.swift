/// A WASI command that serves requests read from standard input, one read each, and keeps a
/// count of them: it answers `<count><request>`. A request starting with `x` makes it exit with
/// status 7, `t` trap, `l` loop forever, `e` write the request to standard error; end of input
/// ends it.
package let residentEchoServer = """
    (module
      (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (global $count (mut i32) (i32.const 0))
      (func (export "_start")
        (local $n i32) (local $first i32)
        (loop $serve
          (i32.store (i32.const 0) (i32.const 64))
          (i32.store (i32.const 4) (i32.const 1024))
          (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
          (local.set $n (i32.load (i32.const 8)))
          (if (i32.eqz (local.get $n)) (then (return)))
          (local.set $first (i32.load8_u (i32.const 64)))
          (if (i32.eq (local.get $first) (i32.const 120)) (then (call $exit (i32.const 7))))
          (if (i32.eq (local.get $first) (i32.const 116)) (then unreachable))
          (if (i32.eq (local.get $first) (i32.const 108)) (then (loop $forever (br $forever))))
          (global.set $count (i32.add (global.get $count) (i32.const 1)))
          (i32.store8 (i32.const 63) (i32.add (i32.const 48) (global.get $count)))
          (i32.store (i32.const 16) (i32.const 63))
          (i32.store (i32.const 20) (i32.add (local.get $n) (i32.const 1)))
          (drop (call $fd_write
            (select (i32.const 2) (i32.const 1) (i32.eq (local.get $first) (i32.const 101)))
            (i32.const 16) (i32.const 1) (i32.const 24)))
          (br $serve))))
    """
