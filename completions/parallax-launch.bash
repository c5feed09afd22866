_parallax__launch() {
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
                cmd="parallax__launch"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        parallax__launch)
            opts="-q -e -v -m -t -c -i -X -f -d -h -V --quiet --plugin-path --eos-on-shutdown --verbose --messages --tags --toc --index --exclude --no-fault --no-position --tap --tap-format --debug --stats --dot --graph --control --metrics --validate --memory --rt-priority --bridge-capacity --scheduling --quantum --gst-debug-level --gst-debug --gst-debug-no-color --gst-debug-color-mode --gst-debug-disable --gst-debug-help --gst-version --gst-fatal-warnings --gst-plugin-spew --gst-plugin-path --gst-plugin-load --gst-disable-segtrap --gst-disable-registry-update --gst-disable-registry-fork --force-position --help-all --help-gst --help --version filesrc filesink fdsrc fdsink fakesrc nullsrc testsrc fakesink nullsink identity passthrough clocksync datasrc consolesink queue valve capsfilter buffersplit bufferjoin bufferconcat chunk batch unbatch delay asyncdelay timeout debounce filter regexfilter samplefilter duplicatefilter rangefilter buffertrim bufferslice bufferpad ratelimiter throttle sequencenumber timestamper metadatainject metadataextract metadatafilter tee funnel input-selector inputselector output-selector outputselector concat streamiddemux audiotestsrc volume audioconvert rawaudioparse audiorate audioresample videotestsrc videoconvert videoscale videoflip videocrop videorate rawvideoparse wavenc wavparse pngdec pngenc jpegdec jpegenc flacparse flacdec flacenc mpegaudioparse mpg123audiodec mpegaudiodec avdec_mp3 avdec_mp3float aacparse avdec_aac faad fdkaacdec oggdemux vorbisdec qtdemux tsdemux tsparse mpegtsparse2 typefind decodebin uridecodebin rav1enc streampay gdppay streamdepay gdpdepay tcpserversrc tcpclientsrc tcpsrc asynctcpsrc tcpserversink tcpclientsink tcpsink asynctcpsink udpsrc asyncudpsrc udpsink asyncudpsink multiudpsink udpmulticastsrc udpmulticastsink unixsrc asyncunixsrc unixsink asyncunixsink httpsrc souphttpsrc httpsink websocketsrc websocketsink zenohsrc zenohsink zenohqueryable zenohquerier shmsink shmsrc appsrc memorysrc appsink memorysink sharedmemorysink"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --plugin-path)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --exclude)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -X)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tap)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tap-format)
                    COMPREPLY=($(compgen -W "text json" -- "${cur}"))
                    return 0
                    ;;
                --debug)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --stats)
                    COMPREPLY=($(compgen -W "table json none" -- "${cur}"))
                    return 0
                    ;;
                --dot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --graph)
                    COMPREPLY=($(compgen -W "json" -- "${cur}"))
                    return 0
                    ;;
                --control)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --metrics)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --memory)
                    COMPREPLY=($(compgen -W "memfd heap hugepages" -- "${cur}"))
                    return 0
                    ;;
                --rt-priority)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --bridge-capacity)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --scheduling)
                    COMPREPLY=($(compgen -W "auto fused isolated rt" -- "${cur}"))
                    return 0
                    ;;
                --quantum)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gst-debug-level)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gst-debug)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gst-debug-color-mode)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gst-plugin-path)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --gst-plugin-load)
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
    complete -F _parallax__launch -o nosort -o bashdefault -o default parallax-launch
else
    complete -F _parallax__launch -o bashdefault -o default parallax-launch
fi

# Element names where a pipeline expects one: after `!` (and, through the function above, as
# its first word). Elsewhere in a pipeline, files (for location=...).
_parallax_launch_elements="filesrc filesink fdsrc fdsink fakesrc nullsrc testsrc fakesink nullsink identity passthrough clocksync datasrc consolesink queue valve capsfilter buffersplit bufferjoin bufferconcat chunk batch unbatch delay asyncdelay timeout debounce filter regexfilter samplefilter duplicatefilter rangefilter buffertrim bufferslice bufferpad ratelimiter throttle sequencenumber timestamper metadatainject metadataextract metadatafilter tee funnel input-selector inputselector output-selector outputselector concat streamiddemux audiotestsrc volume audioconvert rawaudioparse audiorate audioresample videotestsrc videoconvert videoscale videoflip videocrop videorate rawvideoparse wavenc wavparse pngdec pngenc jpegdec jpegenc flacparse flacdec flacenc mpegaudioparse mpg123audiodec mpegaudiodec avdec_mp3 avdec_mp3float aacparse avdec_aac faad fdkaacdec oggdemux vorbisdec qtdemux tsdemux tsparse mpegtsparse2 typefind decodebin uridecodebin rav1enc streampay gdppay streamdepay gdpdepay tcpserversrc tcpclientsrc tcpsrc asynctcpsrc tcpserversink tcpclientsink tcpsink asynctcpsink udpsrc asyncudpsrc udpsink asyncudpsink multiudpsink udpmulticastsrc udpmulticastsink unixsrc asyncunixsrc unixsink asyncunixsink httpsrc souphttpsrc httpsink websocketsrc websocketsink zenohsrc zenohsink zenohqueryable zenohquerier shmsink shmsrc appsrc memorysrc appsink memorysink sharedmemorysink"
_parallax_launch_pipeline() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" i in_pipeline=0
    if [[ ${COMP_CWORD} -gt 0 ]]; then
        prev="${COMP_WORDS[COMP_CWORD-1]}"
    fi
    if [[ "${prev}" == "!" && "${cur}" != -* ]]; then
        COMPREPLY=( $(compgen -W "${_parallax_launch_elements}" -- "${cur}") )
        return 0
    fi
    for (( i = 1; i < COMP_CWORD; i++ )); do
        if [[ " ${_parallax_launch_elements} " == *" ${COMP_WORDS[i]} "* ]]; then
            in_pipeline=1
        fi
    done
    if [[ ${in_pipeline} -eq 1 && "${cur}" != -* ]]; then
        COMPREPLY=()
        return 0
    fi
    _parallax__launch "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _parallax_launch_pipeline -o nosort -o bashdefault -o default parallax-launch
else
    complete -F _parallax_launch_pipeline -o bashdefault -o default parallax-launch
fi
