//! Unix-socket messages that carry file descriptors (SCM_RIGHTS): how an arena's memfd travels to
//! another process, once.
//!
//! A message is sent whole with one `sendmsg`; on a stream socket the receiver must read exactly
//! the number of bytes the protocol says (the payload length is known to both sides) so the fds
//! arrive with the first byte of their message.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The most descriptors one message may carry.
pub const MAX_FDS: usize = 8;

/// Sends `bytes` and `fds` in one message. Fails if the socket took only part of `bytes`.
pub fn send_with_fds(sock: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::other(format!(
            "cannot send {} descriptors in one message (at most {MAX_FDS})",
            fds.len()
        )));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(std::io::Error::other(
            "descriptors do not fit the control buffer",
        ));
    }
    let sent = rustix::net::sendmsg(
        sock,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    if sent != bytes.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("peer took {sent} of {} bytes", bytes.len()),
        ));
    }
    Ok(())
}

/// Receives one message into `buf` and the descriptors that came with it. Returns the byte count
/// (0 at end of stream) and the fds; extra fds beyond [`MAX_FDS`] are closed by the kernel
/// (the message is then flagged truncated, which is reported as an error).
pub fn recv_with_fds(sock: impl AsFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(std::io::Error::other(format!(
            "a message carried more than {MAX_FDS} descriptors"
        )));
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_file_descriptor_crosses_a_socket_with_its_message() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"shared").unwrap();
        send_with_fds(&a, b"hello", &[file.as_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = recv_with_fds(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut got = std::fs::File::from(fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "shared");
    }

    #[test]
    fn end_of_stream_is_zero_bytes_and_no_fds() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        drop(a);
        let (n, fds) = recv_with_fds(&b, &mut [0u8; 4]).unwrap();
        assert_eq!((n, fds.len()), (0, 0));
    }

    #[test]
    fn too_many_descriptors_is_an_error() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fds: Vec<_> = (0..MAX_FDS + 1).map(|_| a.as_fd()).collect();
        assert!(send_with_fds(&a, b"x", &fds).is_err());
    }
}
