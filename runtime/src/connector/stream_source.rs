//! Unbounded line sources: standard input and a TCP connection.

use super::lines::{HeaderSlot, LineReader};
use super::{Read, Source};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use std::io::{self, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long a read waits before reporting [`Read::Idle`].
const POLL: Duration = Duration::from_millis(100);

/// Lines from a stream.
pub struct StreamSource {
    reader: LineReader<Box<dyn io::Read + Send>>,
}

impl Source for StreamSource {
    fn read(&mut self, max: usize) -> io::Result<Read> {
        self.reader.read(max)
    }
}

/// Standard input. A helper thread does the blocking reads, so the source
/// can stop on cancellation even while no input arrives.
pub fn stdin(skip_blank: bool, header: Option<HeaderSlot>) -> StreamSource {
    let (tx, rx) = bounded::<io::Result<Vec<u8>>>(16);
    std::thread::Builder::new()
        .name("weir-stdin".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match io::Read::read(&mut stdin, &mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })
        .expect("spawning the stdin reader");
    let reader: Box<dyn io::Read + Send> = Box::new(ChannelReader { rx, pending: Vec::new(), at: 0 });
    StreamSource { reader: LineReader::new(reader, 0, u64::MAX, skip_blank, header) }
}

/// A client connection to `address` (like Flink's `socketTextStream`).
pub fn socket(address: &str, skip_blank: bool, header: Option<HeaderSlot>) -> io::Result<StreamSource> {
    let hint = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot connect to {address}: {e} (is a server listening there? for a quick test: `nc -lk PORT`)"),
        )
    };
    let addr = address
        .to_socket_addrs()
        .map_err(hint)?
        .next()
        .ok_or_else(|| hint(io::Error::new(ErrorKind::NotFound, "no address")))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(hint)?;
    stream.set_read_timeout(Some(POLL))?;
    let reader: Box<dyn io::Read + Send> = Box::new(stream);
    Ok(StreamSource { reader: LineReader::new(reader, 0, u64::MAX, skip_blank, header) })
}

/// `Read` over chunks from a channel; `WouldBlock` when none arrived in time.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    at: usize,
}

impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            match self.rx.recv_timeout(POLL) {
                Ok(Ok(chunk)) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(RecvTimeoutError::Timeout) => return Err(ErrorKind::WouldBlock.into()),
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn socket_lines_arrive_and_end_with_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"to be or\nnot to be\n").unwrap();
            std::thread::sleep(Duration::from_millis(250));
            conn.write_all(b"that is the question").unwrap();
        });
        let mut src = socket(&addr, false, None).unwrap();
        let mut lines = Vec::new();
        let mut idles = 0;
        loop {
            match src.read(100).unwrap() {
                Read::Batch(b) => lines.extend(b.iter().map(|r| String::from_utf8(r.value.to_vec()).unwrap())),
                Read::Idle => idles += 1,
                Read::End => break,
            }
        }
        server.join().unwrap();
        assert_eq!(lines, ["to be or", "not to be", "that is the question"]);
        assert!(idles >= 1, "the pause should have produced an idle read");
    }

    #[test]
    fn refused_connections_say_what_to_do() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let e = socket(&addr, false, None).err().unwrap().to_string();
        assert!(e.contains(&format!("cannot connect to {addr}")) && e.contains("nc -lk"), "{e}");
    }
}
