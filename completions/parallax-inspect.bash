_parallax__inspect() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="parallax__inspect"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        parallax__inspect)
            opts="-t -h -V --features --exists --json --types --plugin-path --help --version filesrc filesink fdsrc fdsink fakesrc nullsrc testsrc fakesink nullsink identity passthrough clocksync datasrc consolesink queue valve capsfilter buffersplit bufferjoin bufferconcat chunk batch unbatch delay asyncdelay timeout debounce filter regexfilter samplefilter duplicatefilter rangefilter buffertrim bufferslice bufferpad ratelimiter throttle sequencenumber timestamper metadatainject metadataextract metadatafilter tee funnel input-selector inputselector output-selector outputselector concat streamiddemux audiotestsrc volume audioconvert rawaudioparse audiorate audioresample videotestsrc videoconvert videoscale videoflip videocrop videorate rawvideoparse wavenc wavparse pngdec pngenc jpegdec jpegenc flacparse flacdec flacenc mpegaudioparse mpg123audiodec mpegaudiodec avdec_mp3 avdec_mp3float aacparse avdec_aac faad fdkaacdec oggdemux vorbisdec qtdemux tsdemux tsparse mpegtsparse2 typefind decodebin uridecodebin rav1enc streampay gdppay streamdepay gdpdepay tcpserversrc tcpclientsrc tcpsrc asynctcpsrc tcpserversink tcpclientsink tcpsink asynctcpsink udpsrc asyncudpsrc udpsink asyncudpsink multiudpsink udpmulticastsrc udpmulticastsink unixsrc asyncunixsrc unixsink asyncunixsink httpsrc souphttpsrc httpsink websocketsrc websocketsink zenohsrc zenohsink zenohqueryable zenohquerier shmsink shmsrc appsrc memorysrc appsink memorysink sharedmemorysink"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --types)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -t)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --plugin-path)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _parallax__inspect -o nosort -o bashdefault -o default parallax-inspect
else
    complete -F _parallax__inspect -o bashdefault -o default parallax-inspect
fi
