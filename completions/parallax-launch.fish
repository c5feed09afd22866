complete -c parallax-launch -s X -l exclude -d 'With -v, do not print these properties (comma separated)' -r
complete -c parallax-launch -l stats -d 'Statistics on exit: per element buffers, bytes and busy time, per link high-water marks, wall time and throughput. Printed as a table unless -q; `--stats=json` prints one JSON object (even with -q)' -r -f -a "table\t'An aligned table on stderr'
json\t'One JSON object on one line of stderr'
none\t'Nothing'"
complete -c parallax-launch -l dot -d 'Write the pipeline graph as Graphviz DOT to FILE (stdout when no FILE is given): a node per element, an edge per link, a cluster per thread; after a run, with buffer counts' -r
complete -c parallax-launch -l memory -d 'What backs buffer pools' -r -f -a "memfd\t'Sealed memfd shared memory: any buffer can cross into another process without a copy'
heap\t'Private anonymous memory'
hugepages\t'Sealed memfd on 2 MiB huge pages (fewer TLB misses with large buffers); falls back to memfd with one warning when no huge pages are reserved (sysctl vm.nr_hugepages)'"
complete -c parallax-launch -l rt-priority -d 'Run exec=rt threads with SCHED_FIFO at this priority (1-99; needs CAP_SYS_NICE or an rtprio limit, otherwise one warning and normal priority)' -r
complete -c parallax-launch -s q -l quiet -d 'Print nothing but errors (no statistics)'
complete -c parallax-launch -s e -l eos-on-shutdown -d 'On Ctrl-C, end the stream at the sources and exit 0 once it is written out (the drain happens without -e too, but then the exit status is 130)'
complete -c parallax-launch -s v -l verbose -d 'Print the execution plan and the properties set on each element'
complete -c parallax-launch -s m -l messages -d 'Print pipeline events as they happen: running, each thread started and finished (end of stream, stopped or its error), the ending'
complete -c parallax-launch -s t -l tags -d 'Output tags (accepted for gst-launch compatibility; parallax streams carry no tags)'
complete -c parallax-launch -s c -l toc -d 'Output TOC (accepted for gst-launch compatibility; parallax streams carry no TOC)'
complete -c parallax-launch -s i -l index -d 'Output index (accepted for gst-launch compatibility)'
complete -c parallax-launch -s f -l no-fault -d 'Do not install a fault handler (accepted for gst-launch compatibility; parallax installs none)'
complete -c parallax-launch -l no-position -d 'Do not print the current position (accepted for gst-launch compatibility)'
complete -c parallax-launch -l validate -d 'Parse, validate and plan without running anything (exit 0 when the pipeline would run, 2 with the error otherwise); with --dot, write the graph'
complete -c parallax-launch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c parallax-launch -s V -l version -d 'Print version'
