"""The whole system in simulation over ROS 2: the built-in tabletop simulation as a node (camera, joint states,
/clock) and the s2_policy node acting on it.

npx s2-policy sim models --out /tmp/s2sim        # demo models and their parameter file (once)
ros2 launch s2_policy sim.launch.py params_file:=/tmp/s2sim/sim_params.yaml episodes:=5
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, RegisterEventHandler, EmitEvent
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    args = [
        DeclareLaunchArgument('params_file', description='s2_policy parameters (from `s2-policy sim models`)'),
        DeclareLaunchArgument('episodes', default_value='10', description='episodes before the simulation stops'),
        DeclareLaunchArgument('seed', default_value='0', description='seed of the first episode'),
        DeclareLaunchArgument('log_level', default_value='info', description='debug, info, warn, error'),
    ]
    sim = Node(package='s2_policy', executable='s2_sim_node', name='s2_sim', output='screen',
               parameters=[{'episodes': LaunchConfiguration('episodes'), 'seed': LaunchConfiguration('seed'),
                            'action_topic': '/s2_policy/actions'}],
               arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    policy = LifecycleNode(package='s2_policy', executable='s2_policy_node', name='s2_policy', namespace='', output='screen',
                           parameters=[LaunchConfiguration('params_file'), {'autostart': True, 'use_sim_time': True}],
                           arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')])
    stop = RegisterEventHandler(OnProcessExit(target_action=sim, on_exit=[EmitEvent(event=Shutdown(reason='simulation finished'))]))
    return LaunchDescription(args + [sim, policy, stop])
