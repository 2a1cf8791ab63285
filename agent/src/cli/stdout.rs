//! Standard output of the command line. A reader that went away
//! (`cyrcles ego list | head -1`) ends the program quietly with status 0,
//! as a Unix filter does, where `println!` would panic.

use std::fmt;
use std::io::{ErrorKind, Write};

/// `println!` to standard output, ending the program quietly if nobody
/// reads it any more.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` to standard output (flushed), likewise.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Writes and flushes; a closed pipe ends the program with status 0, any
/// other failure with status 1 and a line on standard error.
pub(crate) fn write(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("cyrcles: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
