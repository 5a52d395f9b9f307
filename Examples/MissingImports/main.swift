// The article's NumPy example: an extension that cannot load in a subinterpreter fails with an
// ImportError. Here the analog is a module that imports what the interpreter host does not
// provide: it is rejected when it is loaded, with every missing import named. Such code belongs
// in a ProcessPoolExecutor as a native Swift job.
//
//     $ swift run MissingImports
//     numpy.wasm cannot load in an interpreter: it imports what the host does not provide: env.PyInit__multiarray_umath (function), env.PyModule_Create2 (function) (no host functions are defined)
//     missing: ["env.PyInit__multiarray_umath", "env.PyModule_Create2"]

import ConcurrentFutures

do {
    _ = try GuestModule(
        wat: """
            (module
              (import "env" "PyInit__multiarray_umath" (func (result i32)))
              (import "env" "PyModule_Create2" (func (param i32 i32) (result i32)))
              (func (export "use_numpy") (param i64) (result f64) f64.const 0))
            """, name: "numpy.wasm")
} catch {
    print(error.message)
    print("missing: \(error.missingImports)")
}
