complete -c parallax-launch -l plugin-path -d 'Also load plugins from these libraries or directories (colon-separated; searched before PARALLAX_PLUGIN_PATH and ~/.local/share/parallax/plugins)' -r
complete -c parallax-launch -s X -l exclude -d 'With -v, do not print these properties (comma separated)' -r
complete -c parallax-launch -l tap -d 'Show every buffer passing ELEMENT (what leaves it; for a sink, what arrives) or the link at ELEMENT.PAD: size, metadata and its first 32 bytes as hex, on stderr. Does not change the data. May be repeated' -r
complete -c parallax-launch -l tap-format -d 'How --tap prints each buffer' -r -f -a "text\t'A line per buffer (size and metadata), then its first bytes as a hex dump'
json\t'One JSON object per buffer, one per line'"
complete -c parallax-launch -s d -l debug -d 'Log filter, like GST_DEBUG: `info`, `info,filesrc=trace` (an element factory or name selects that element\'s log lines), `parallax::exec=debug`; gst\'s `filesrc:5` and `*:3` work too. Overrides PARALLAX_LOG. Logs go to stderr' -r
complete -c parallax-launch -l stats -d 'Statistics on exit: per element buffers, bytes and busy time, per link high-water marks, wall time and throughput. Printed as a table unless -q; `--stats=json` prints one JSON object (even with -q)' -r -f -a "table\t'An aligned table on stderr'
json\t'One JSON object on one line of stderr'
none\t'Nothing'"
complete -c parallax-launch -l dot -d 'Write the pipeline graph as Graphviz DOT to FILE (stdout when no FILE is given, which is refused when a sink writes the pipeline\'s data there): a node per element, an edge per link, a cluster per thread; after a run, with buffer counts' -r
complete -c parallax-launch -l graph -d 'Write the pipeline graph as JSON to stdout (schema 1): elements with their properties, pads, domain and thread, links with their negotiated caps, and counts. With --validate, before anything runs; otherwise after the run, with each element\'s buffer and byte counts' -r -f -a "json\t'One JSON object (schema 1)'"
complete -c parallax-launch -l control -d 'Listen for commands on a Unix socket at PATH while the pipeline runs (mode 0600, removed at exit; a path where another process listens is refused, a stale socket replaced). One JSON object per line in, one JSON line out: {"cmd": "get"|"set", "element": NAME, "property": NAME, "value": V}, {"cmd": "pause"}, "resume", "eos", "stats", "graph", "subscribe" (events: state, property, warning, message, eos, error). `parallax-top` shows it live' -r -F
complete -c parallax-launch -l metrics -d 'Serve Prometheus metrics at http://ADDR:PORT/metrics while the pipeline runs: per element buffers, bytes, busy time and drops, queue levels, link and pool high-water marks' -r
complete -c parallax-launch -l memory -d 'What backs buffer pools' -r -f -a "memfd\t'Sealed memfd shared memory: any buffer can cross into another process without a copy'
heap\t'Private anonymous memory'
hugepages\t'Sealed memfd on 2 MiB huge pages (fewer TLB misses with large buffers); falls back to memfd with one warning when no huge pages are reserved (sysctl vm.nr_hugepages)'"
complete -c parallax-launch -l rt-priority -d 'Run exec=rt threads with SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE or an rtprio limit, otherwise one warning and normal priority)' -r
complete -c parallax-launch -l bridge-capacity -d 'Buffers held by each channel the planner adds where domains meet (async bridges, exec=rt hand-overs): more smooths bursts, fewer bounds memory and latency (default 8 to 16)' -r
complete -c parallax-launch -l scheduling -d 'Where elements left at exec=auto run: from their hints (auto), fused wherever possible, or each in a worker process (isolated) or on an rt thread (rt) of its own where it can. exec= on an element wins; untrusted code is isolated in every mode' -r -f -a "auto\t'From each element\'s hints: untrusted code isolated, RT-safe low-latency elements on rt threads, network I/O async, everything else fused into its neighbour\'s thread'
fused\t'Fused wherever possible: only untrusted code and async-only elements move'
isolated\t'Every source, sink and one-in-one-out element in a sandboxable worker process of its own'
rt\t'Every source and one-in-one-out element on an rt thread of its own'"
complete -c parallax-launch -l quantum -d 'Buffers an exec=rt one-in-one-out element takes in per cycle, at most: it wakes for the first, takes what else is waiting up to N, and processes them as one timed cycle (fewer wake-ups under load; cycle times under -m and --stats) (default 1)' -r
complete -c parallax-launch -l gst-debug-level -d 'Default log level, gst\'s numbers: 0 none, 1 error, 2 warning, 3-4 info, 5 debug, 6-9 trace (as `-d LEVEL`)' -r
complete -c parallax-launch -l gst-debug -d 'Log filter, as GST_DEBUG: `filesrc:5,*:2` (added to -d)' -r
complete -c parallax-launch -l gst-debug-color-mode -d 'Log colours: on, off, disable, auto or unix (off and disable: no colours)' -r
complete -c parallax-launch -l gst-plugin-path -d 'Accepted and ignored: parallax loads no plugins' -r
complete -c parallax-launch -l gst-plugin-load -d 'Accepted and ignored: parallax loads no plugins' -r
complete -c parallax-launch -s q -l quiet -d 'Print nothing but errors (no statistics)'
complete -c parallax-launch -s e -l eos-on-shutdown -d 'On Ctrl-C, end the stream at the sources and exit 0 once it is written out (the drain happens without -e too, but then the exit status is 130)'
complete -c parallax-launch -s v -l verbose -d 'Print the properties set on each element, as gst-launch -v does (`/pipeline0/filesrc0: location = "in.bin"`), the links, and the thread each element runs in'
complete -c parallax-launch -s m -l messages -d 'Print pipeline events as they happen: running, each thread started and finished (end of stream, stopped or its error), the ending'
complete -c parallax-launch -s t -l tags -d 'Output tags (accepted for gst-launch compatibility; parallax streams carry no tags)'
complete -c parallax-launch -s c -l toc -d 'Output TOC (accepted for gst-launch compatibility; parallax streams carry no TOC)'
complete -c parallax-launch -s i -l index -d 'Output index (accepted for gst-launch compatibility)'
complete -c parallax-launch -s f -l no-fault -d 'Do not install a fault handler (accepted for gst-launch compatibility; parallax installs none)'
complete -c parallax-launch -l no-position -d 'Do not draw the progress line. It is drawn only when stderr is a terminal and -q is not given: bytes and buffers into the sinks, rate and elapsed time, and a bar with ETA when every source knows its size (filesrc)'
complete -c parallax-launch -l validate -d 'Parse, validate and plan without running anything (exit 0 when the pipeline would run, 2 with the error otherwise); with --dot, write the graph'
complete -c parallax-launch -l gst-debug-no-color -d 'Logs without colours'
complete -c parallax-launch -l gst-debug-disable -d 'No logs, whatever -d, PARALLAX_LOG or GST_DEBUG say'
complete -c parallax-launch -l gst-debug-help -d 'Explain the log filter (-d, --gst-debug) and exit'
complete -c parallax-launch -l gst-version -d 'Print the version and exit'
complete -c parallax-launch -l gst-fatal-warnings -d 'Accepted and ignored (no effect here; -v says so)'
complete -c parallax-launch -l gst-plugin-spew -d 'Accepted and ignored: parallax loads no plugins'
complete -c parallax-launch -l gst-disable-segtrap -d 'Accepted and ignored: parallax loads no plugins'
complete -c parallax-launch -l gst-disable-registry-update -d 'Accepted and ignored: parallax has no plugin registry'
complete -c parallax-launch -l gst-disable-registry-fork -d 'Accepted and ignored: parallax has no plugin registry'
complete -c parallax-launch -l force-position -d 'Accepted and ignored: the progress line is drawn on stderr, and only on a terminal'
complete -c parallax-launch -l help-all -d 'Print help (as --help)'
complete -c parallax-launch -l help-gst -d 'Print help (as --help)'
complete -c parallax-launch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c parallax-launch -s V -l version -d 'Print version'

# Element names where a pipeline expects one: its first word and after `!`.
function __parallax_launch_wants_element
    set -l tokens (commandline -opc)
    test "$tokens[-1]" = '!'; and return 0
    for t in $tokens[2..-1]
        string match -q -- '-*' $t; or return 1
    end
    return 0
end
complete -c parallax-launch -n __parallax_launch_wants_element -f -a filesrc -d 'Reads a file'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a filesink -d 'Writes to a file'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a fdsrc -d 'Reads from a file descriptor (stdin by default)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a fdsink -d 'Writes to a file descriptor (stdout by default)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a fakesrc -d 'Produces buffers of chosen sizes and contents (nullsrc: empty buffers)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a nullsrc -d 'Produces buffers of chosen sizes and contents (nullsrc: empty buffers)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a testsrc -d 'Produces test-pattern buffers of a fixed size'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a fakesink -d 'Discards buffers (after counting them)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a nullsink -d 'Discards buffers (after counting them)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a identity -d 'Passes buffers through, optionally dropping, delaying or failing'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a passthrough -d 'Passes buffers through, optionally dropping, delaying or failing'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a clocksync -d 'Synchronise buffers to the clock'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a datasrc -d 'Produces buffers holding data given on the command line'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a consolesink -d 'Shows each buffer on stdout as a line of text, a hex dump or a JSON object'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a queue -d 'A thread boundary with a bounded buffer queue'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a valve -d 'Passes or drops buffers depending on the drop property'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a capsfilter -d 'Restricts the stream'\''s caps (caps written between links become one)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a buffersplit -d 'Cuts a byte stream into records at a delimiter'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a bufferjoin -d 'Puts a delimiter between buffers, turning records back into a byte stream'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a bufferconcat -d 'Joins consecutive buffers into larger ones'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a chunk -d 'Re-cuts the stream into buffers of a fixed size'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a batch -d 'Gathers buffers into batches that remember their parts'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a unbatch -d 'Gives back the buffers a batch was made of'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a delay -d 'Holds each buffer back for a fixed time'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asyncdelay -d 'Holds each buffer back for a fixed time'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a timeout -d 'Passes buffers, and a fallback buffer whenever the input is silent too long'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a debounce -d 'Passes a buffer only once the input has been quiet for a while'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a filter -d 'Passes the buffers for which a CEL expression is true'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a regexfilter -d 'Passes the buffers whose bytes (or a user field) match a regular expression'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a samplefilter -d 'Passes every Nth buffer, a random share, or the first N'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a duplicatefilter -d 'Drops buffers whose bytes repeat one of the last N passed'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a rangefilter -d 'Passes buffers whose size and sequence number are within bounds'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a buffertrim -d 'Cuts every buffer down to at most max-size bytes (no copy)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a bufferslice -d 'Keeps bytes offset..offset+length of every buffer (no copy)'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a bufferpad -d 'Pads every buffer shorter than min-size with a fill byte'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a ratelimiter -d 'Holds the stream to a byte or buffer rate by waiting'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a throttle -d 'Holds the stream to a byte or buffer rate by dropping the excess'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a sequencenumber -d 'Renumbers the buffers'\'' sequence numbers from start'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a timestamper -d 'Stamps each buffer with the time it passes'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a metadatainject -d 'Sets stream id, duration, offsets and user fields on every buffer'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a metadataextract -d 'Writes each buffer'\''s metadata as a JSON line; the buffer passes on unchanged'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a metadatafilter -d 'Passes only buffers of one stream id or a sequence range'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tee -d 'Sends every buffer to each of its branches, without copying'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a funnel -d 'Merges several streams into one'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a input-selector -d 'Passes the buffers of one of its inputs and drops the others'\'''
complete -c parallax-launch -n __parallax_launch_wants_element -f -a inputselector -d 'Passes the buffers of one of its inputs and drops the others'\'''
complete -c parallax-launch -n __parallax_launch_wants_element -f -a output-selector -d 'Sends every buffer to one of its branches'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a outputselector -d 'Sends every buffer to one of its branches'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a concat -d 'Plays its inputs one after another'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a streamiddemux -d 'Sends each buffer to the branch of its stream id'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a audiotestsrc -d 'Creates audio test signals of given frequency and volume'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a volume -d 'Set volume on audio/raw streams'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a audioconvert -d 'Convert audio to different formats'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a audioresample -d 'Resamples audio'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videotestsrc -d 'Creates a test video stream'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videoconvert -d 'Converts video from one colorspace to another'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videoscale -d 'Resizes video'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videoflip -d 'Flips and rotates video'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videocrop -d 'Crops video into a user-defined region'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a videorate -d 'Drops/duplicates/adjusts timestamps on video frames to make a perfect stream'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a rawvideoparse -d 'Converts unformatted data streams into timestamped raw video frames'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a wavenc -d 'Encode raw audio into WAV'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a streampay -d 'Frames buffers with their metadata and caps for a byte transport'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a gdppay -d 'Frames buffers with their metadata and caps for a byte transport'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a streamdepay -d 'Reads buffers, metadata and end of stream back out of streampay'\''s frames'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a gdpdepay -d 'Reads buffers, metadata and end of stream back out of streampay'\''s frames'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpserversrc -d 'Accepts one TCP connection and reads it'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpclientsrc -d 'Connects to a TCP server and reads what it sends'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpsrc -d 'Connects to a TCP server and reads what it sends'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asynctcpsrc -d 'Connects to a TCP server and reads what it sends'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpserversink -d 'Serves every buffer to every connected TCP client'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpclientsink -d 'Connects to a TCP server and sends it every buffer'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a tcpsink -d 'Connects to a TCP server and sends it every buffer'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asynctcpsink -d 'Connects to a TCP server and sends it every buffer'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a udpsrc -d 'Receives UDP datagrams, unicast or multicast'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asyncudpsrc -d 'Receives UDP datagrams, unicast or multicast'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a udpsink -d 'Sends each buffer as a UDP datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asyncudpsink -d 'Sends each buffer as a UDP datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a multiudpsink -d 'Sends each buffer as a UDP datagram to every client'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a udpmulticastsrc -d 'Receives the datagrams of a multicast group'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a udpmulticastsink -d 'Sends each buffer as a datagram to a multicast group'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a unixsrc -d 'Reads a Unix domain socket, stream or datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asyncunixsrc -d 'Reads a Unix domain socket, stream or datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a unixsink -d 'Writes to a Unix domain socket, stream or datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a asyncunixsink -d 'Writes to a Unix domain socket, stream or datagram'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a httpsrc -d 'Downloads a URL over HTTP/1.1'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a souphttpsrc -d 'Downloads a URL over HTTP/1.1'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a httpsink -d 'Uploads the stream over HTTP/1.1: one chunked request, or one per buffer'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a websocketsrc -d 'Receives WebSocket messages, one buffer per message'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a websocketsink -d 'Sends every buffer as one WebSocket message'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a shmsink -d 'Sends buffers to other processes through shared memory'
complete -c parallax-launch -n __parallax_launch_wants_element -f -a shmsrc -d 'Receives buffers from a shmsink in another process'
