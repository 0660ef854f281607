// tap passes `--import=@tapjs/processinfo/import` to every test process: with asyncfn's
// stand-in (index.js) it records nothing, so it loads nothing.
export {};
